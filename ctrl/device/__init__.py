"""The device model: one YAML file per device says what the chip is, how it is calibrated and how it is
wired to QICK boards. The scheduler, the emitters and the emulator all read it through this package.

    from ctrl.device import load_device
    dev = load_device("device_configs/planar16_d3.yaml")
    dev.qubit("Q3").t1_s, dev.coupler("Q1", "Q7").duration_s, dev.qubit_wiring("Q3").drive.gen
    dev.calibration_hash        # changes exactly when a calibrated number changes
    dev.graph(usable_only=True) # networkx graph for placement

Public API: `load_device`, `validate`, `validate_text`, `json_schema`, `Device`, `DeviceError`,
`DEFAULT_DEVICE` (the shipped planar16_d3.yaml, found wherever ctrl is installed), the section models (`DeviceFile`, `Wiring`, `Calibration`, ...) and the firmware summaries
(`FirmwareInfo`, `GenInfo`, `ReadoutInfo`). The file format is documented in docs/device.md.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from ctrl.device.checks import DEFAULT_FREQUENCY_GUARD_HZ
from ctrl.device.device import Device
from ctrl.device.firmware import FirmwareInfo, GenInfo, ReadoutInfo
from ctrl.device.load import DeviceError, device_warnings, lint_text, load_device, validate, validate_text
from ctrl.device.target import Target
from ctrl.device.model import (
    SCHEMA_VERSION,
    Calibration,
    Channel,
    Controller,
    CouplerWiring,
    CrossResonanceGate,
    CZGate,
    DeviceFile,
    ISwapGate,
    QubitCalibration,
    QubitWiring,
    ReadoutChannel,
    Wiring,
)
from ctrl.device.schema import json_schema



def _shipped_devices() -> Path:
    """The folder of the shipped devices, the schema and firmware/ (a real folder: device files name their
    firmware by a path relative to themselves).

    Installed (a wheel), it is the package data `ctrl.device_configs`; in a source checkout (an editable
    install, or the repository on PYTHONPATH) that name is not importable and the folder is the
    repository's own device_configs/, beside the package."""
    try:
        folder = resources.files("ctrl.device_configs")
    except ModuleNotFoundError:
        return Path(__file__).resolve().parents[2] / "device_configs"
    path = folder / "planar16_d3.yaml"  # a namespace package's files() joins to a plain Path
    if not isinstance(path, Path):  # e.g. imported from a zip file: no real folder to name firmware from
        raise ImportError(f"ctrl's shipped devices must be files on disk, not inside {folder}")
    return path.parent


DEFAULT_DEVICE = _shipped_devices() / "planar16_d3.yaml"

__all__ = [
    "DEFAULT_DEVICE", "DEFAULT_FREQUENCY_GUARD_HZ", "SCHEMA_VERSION",
    "Device", "Target", "DeviceError", "device_warnings", "lint_text", "load_device", "validate", "validate_text", "json_schema",
    "DeviceFile", "Wiring", "Calibration", "QubitCalibration", "QubitWiring", "ReadoutChannel", "Channel",
    "Controller", "CouplerWiring", "CZGate", "ISwapGate", "CrossResonanceGate",
    "FirmwareInfo", "GenInfo", "ReadoutInfo",
]
