"""`python -m tools.fuzz`: the differential fuzzing campaign (campaign.py)."""
import sys

from .campaign import main

sys.exit(main())
