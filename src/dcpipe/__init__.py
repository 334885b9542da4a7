"""dcpipe: dataset condensation by gradient matching (Zhao et al., ICLR 2021; Jiang et al.)."""

__version__ = "0.1.0"
