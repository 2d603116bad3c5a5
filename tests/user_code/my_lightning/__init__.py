"""A user's own Lightning code, as anyone writes it: it imports nothing of sweeplab (tests train it through sweeplab)."""
