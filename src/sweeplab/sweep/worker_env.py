"""How the sweep driver talks to its worker processes: environment variables and exit codes."""

DEADLINE_ENV = "SWEEPLAB_DEADLINE"        # epoch seconds after which a worker starts no new trial
WORKER_INDEX_ENV = "SWEEPLAB_WORKER_INDEX"  # which of the driver's workers this is (seeds its sampler)
THREADS_ENV = "SWEEPLAB_THREADS"          # torch CPU threads for one worker
EXIT_TOO_MANY_FAILURES = 3                # the last max_consecutive_failures trials all failed
