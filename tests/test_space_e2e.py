"""Every value a sweep's space can give a key is checked against the key's type before the first trial."""

from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize("param, message", [
    ("model.dropout=choice(low, high)",
     "sweep.params.model.dropout: choice(low, high): low does not fit model.dropout, which holds a number (0.1); "
     "allowed: numbers"),
    ("trainer.max_epochs=interval(1, 4)",
     "sweep.params.trainer.max_epochs: interval(1, 4): floats from 1.0 to 4.0 do not fit trainer.max_epochs, "
     "which holds an integer (4); allowed: integers"),
    ("model.backbone.batch_norm=choice(true, 0)", "0 does not fit model.backbone.batch_norm, which holds true or false"),
])
def test_a_value_that_does_not_fit_its_key_exits_2_and_writes_nothing(tmp_path, param, message):
    done = run_cli("sweep", "sweep=digits_cnn", "trainer=smoke", f"sweep.params.{param}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("sweeplab: error:") and message in lines[0], done.stderr
    assert not (tmp_path / "mlruns").exists()
