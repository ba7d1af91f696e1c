"""Studies: many runs of one base spec (grid x variants x seeds), started by a launcher, recorded in one study directory.

:func:`read_index` reads a study directory's index (format in :mod:`fomo_host.study.index`).
"""

from .index import StudyIndex, StudyRun, is_study_dir, read_index

__all__ = ["StudyIndex", "StudyRun", "is_study_dir", "read_index"]
