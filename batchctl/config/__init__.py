"""The one configuration file: its schema (`model`) and its loading (`load`)."""

from batchctl.config.claims import ClaimsConfig
from batchctl.config.cost import CostConfig
from batchctl.config.load import ENV_BROKER_URL, ConfigError, load_config, parse_config
from batchctl.config.model import (
    AlertsConfig,
    AutoscalerConfig,
    BatchConfig,
    BrokerConfig,
    Config,
    EventsConfig,
    ExporterConfig,
    GuardConfig,
    KubernetesConfig,
    LeaderElectionConfig,
)

__all__ = [
    "ENV_BROKER_URL",
    "AlertsConfig",
    "AutoscalerConfig",
    "BatchConfig",
    "BrokerConfig",
    "ClaimsConfig",
    "Config",
    "ConfigError",
    "CostConfig",
    "EventsConfig",
    "ExporterConfig",
    "GuardConfig",
    "KubernetesConfig",
    "LeaderElectionConfig",
    "load_config",
    "parse_config",
]
