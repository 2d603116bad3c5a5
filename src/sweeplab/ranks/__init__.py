"""The processes of one multi-device run, below run_experiment: it drives them, they never import it.

launch.py   rank 0's side: fork ranks 1..K-1 (sweeplab.forks; env:// rendezvous), end them with the run, explain a failure
follower.py one follower's life around ENTRY's run: watch rank 0, set its rank, leave its error for rank 0

ENTRY (`module:function`, sweeplab.experiment's `follow`) is passed down by run_experiment: the rank
machinery runs whatever it is given and imports nothing above it.
"""
