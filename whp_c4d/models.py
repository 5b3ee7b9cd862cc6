"""Imports every domain's models so the metadata is complete (Alembic, create_all, erasure checks)."""

from .audience import erasure as _erasure  # noqa: F401  (registers its retention kind)
from .audience.models import *  # noqa: F401,F403
from .auth.models import *  # noqa: F401,F403
from .campaigns.models import *  # noqa: F401,F403
from .core.retention import RetentionPolicy  # noqa: F401
from .feedback import services as _feedback_services  # noqa: F401  (files feedback, erasure, retention kinds)
from .inbound import models as _inbound_models  # noqa: F401
from .messaging import outbox as _outbox  # noqa: F401  (connects its signal receivers)
from .messaging import retention as _messaging_retention  # noqa: F401  (registers its retention kinds)
from .messaging.models import Sender  # noqa: F401
from .simulator.models import SimulatorMessage  # noqa: F401  (also connects its erasure receiver)
