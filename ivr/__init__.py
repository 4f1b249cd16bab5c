"""ivr12333: an open IVR for China's 12333 medical-insurance hotline."""

__version__ = "0.1.0"
