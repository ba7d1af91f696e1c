"""The continual loop: stream, data mixture, training, merging, evaluation, checkpoints; the compute budget that sets its
steps per task (:mod:`.budget`) and a search trial's reports from inside a run (:mod:`.trial`)."""
