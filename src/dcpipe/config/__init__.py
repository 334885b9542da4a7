"""params.yaml: load and validate once (load, checks), then build the typed sections (sections) and the library's
typed configs (settings)."""

from ..errors import ParamsError
from .load import PLANNED_PARAMS, ParamsLoader, check_planned, load_params, planned_params, read_yaml, validate_params
from .sections import Sections, Study, sections
from .settings import (DataSources, Runtime, augment_datasets, batched, condense_config, condensed_memory_sets, continual_config, data_sources,
                       dsa_methods, evaluation_model_for, ipc_sweep_methods, methods, models_per_set,
                       nas_train_config, nas_whole_config, nas_widths, proxy_train_config, runtime, score_config,
                       score_files, study_of, train_config, variant_distance, wholeset_config)

__all__ = ["DataSources", "PLANNED_PARAMS", "ParamsError", "ParamsLoader", "Runtime", "Sections", "Study", "augment_datasets", "batched",
           "check_planned", "condense_config", "condensed_memory_sets", "continual_config", "data_sources", "dsa_methods",
           "evaluation_model_for", "ipc_sweep_methods", "load_params", "methods", "models_per_set", "nas_train_config",
           "nas_whole_config", "nas_widths", "planned_params", "proxy_train_config", "read_yaml", "runtime", "score_config", "score_files",
           "sections", "study_of", "train_config", "validate_params", "variant_distance", "wholeset_config"]
