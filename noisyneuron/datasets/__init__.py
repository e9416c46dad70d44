"""Training and evaluation data: builders for separation mixtures and classification clips.

Everything here is made from the allowed sources (``shared/DATA.md``), reproducibly from a seed.
:mod:`.layout` fixes the on-disk format every builder writes and every reader (training,
evaluation) reads; :mod:`.splits` assigns each source to one split; :mod:`.fixture` makes a tiny
set in seconds for tests. ``scripts/install-data-tools.sh`` installs the external tools.
"""

import warnings

# pyworld and pysinsy import pkg_resources, which warns on every worker start; nothing to act on
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning)
