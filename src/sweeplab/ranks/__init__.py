"""The processes of one multi-device run, below run_experiment: it drives them, they never import it.

launch.py   rank 0's side: start ranks 1..K-1 (env:// rendezvous), end them with the run, explain a failure
server.py   `python -m sweeplab.ranks.server ENTRY`: a fork server that preloads ENTRY and forks the followers
follower.py one follower's life around ENTRY's run: watch rank 0, set its rank, leave its error for rank 0
processes.py whether a process is still alive

ENTRY (`module:function`, sweeplab.experiment's `follow`) is passed down by run_experiment: the rank
machinery runs whatever it is given and imports nothing above it.
"""
