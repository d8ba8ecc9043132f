"""finchsim: local simulation and capacity-planning harness for Finch."""

__version__ = "0.1.0"
