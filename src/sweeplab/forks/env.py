"""The environment variables by which a forked child knows the fork server it came from."""

SERVER_ENV = "SWEEPLAB_FORK_SERVER"     # that server's socket
MODULES_ENV = "SWEEPLAB_FORK_MODULES"   # what that server imported, comma-separated
