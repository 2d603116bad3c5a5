"""Processes forked from a server that imported torch, Lightning and MLflow once, so each starts in milliseconds.

server.py  `python -m sweeplab.forks.server SOCKET MODULE...`: imports the modules, then forks one child per
           request on the socket
client.py  the requesting process's side: the server it came from, or its own started on first use; a handle
           per forked child
alive.py   whether a process is still running
env.py     the environment variables by which a forked child knows its server

A fresh Python process pays ≈5-6 s of imports before it runs a line of sweeplab; the sweep's workers
and a run's follower ranks are forked instead. Nothing here imports the rest of sweeplab: a request
names the function its child runs (`module:function`).
"""
