"""The parts of ``tools/bench.py``: the processes it runs against (``processes``), the calls (``workload``), the
load shapes (``load``), the interleaved rounds and their figures (``suite``), the replicas row (``replicas``), the
soak (``soak``) and what is printed and written (``report``)."""
