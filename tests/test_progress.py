"""Progress in a log (stderr not a terminal): whole lines, one per 30 s, none for a quick loop."""

from paligemma_eval.harness import progress


def test_a_log_gets_a_plain_line_every_30_seconds_and_none_for_a_quick_loop(monkeypatch, capsys):
    clock = iter([0.0, 10.0, 31.0, 45.0, 62.0])     # start, then one reading per update
    monkeypatch.setattr(progress.time, "monotonic", lambda: next(clock))
    with progress.progress(100, "generate vqav2_val") as bar:   # pytest's stderr: not a tty
        for _ in range(4):
            bar.update(10)
    lines = capsys.readouterr().err.splitlines()
    # at 31 s: 20 done (0.65/s), 80 left; at 62 s: 40 done; none at 10 s or 45 s
    assert lines == ["generate vqav2_val: 20/100 ex (0.65 ex/s, about 2 min 4 s left)",
                     "generate vqav2_val: 40/100 ex (0.65 ex/s, about 1 min 33 s left)"]
    clock = iter([0.0, 1.0])
    with progress.progress(5, "score vqav2_val", "task") as bar:
        bar.update(5)
    assert capsys.readouterr().err == ""
    assert progress._duration(7300) == "2 h 1 min" and progress._duration(9) == "9 s"
