"""What a compile writes and keeps: the output folder (`folder.py`) and the compile cache (`cache.py`)."""

from ctrl.outputs.cache import (
                                 CompileCache,
                                 CompileKey,
                                 Entry,
                                 compile_key,
                                 default_cache_dir,
)
from ctrl.outputs.folder import (
                                 INPUTS_FILE,
                                 NO_QICK_WHY,
                                 compile_inputs,
                                 output_files,
                                 read_inputs,
                                 report_doc,
                                 write_compiled,  # fmt: skip
                                 write_outputs,
)

__all__ = [
    "CompileCache", "CompileKey", "Entry", "compile_key", "default_cache_dir",
    "INPUTS_FILE", "NO_QICK_WHY", "compile_inputs", "output_files", "read_inputs", "report_doc",
    "write_compiled", "write_outputs",
]
