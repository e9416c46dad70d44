"""Audio devices through PortAudio (sounddevice): listing, choosing, checking settings.

Every failure a user can cause (no device, a name that matches nothing, a sample rate the device
refuses, no sound server) raises :class:`~noisyneuron.errors.DeviceError` with one line that
says what to do.
"""

from __future__ import annotations

from dataclasses import dataclass

import sounddevice as sd

from noisyneuron.errors import DeviceError

__all__ = ["DeviceInfo", "list_devices", "rescan", "resolve_device", "check_stream_settings"]

NO_DEVICE_HINT = (
    "no audio devices found: connect a sound card, or on a machine without one start JACK "
    "(`jackd -d dummy -r 48000 -p 256 &`); `noisyneuron devices` lists what PortAudio sees"
)


@dataclass(frozen=True)
class DeviceInfo:
    """One PortAudio device.

    Attributes:
        index: PortAudio device index.
        name: device name.
        host_api: host API name (ALSA, JACK Audio Connection Kit, Core Audio, WASAPI...).
        max_input_channels: input channels (0 for output-only devices).
        max_output_channels: output channels (0 for input-only devices).
        default_sample_rate: the device's default rate, in Hz.
        is_default_input: PortAudio's default input device.
        is_default_output: PortAudio's default output device.
    """

    index: int
    name: str
    host_api: str
    max_input_channels: int
    max_output_channels: int
    default_sample_rate: float
    is_default_input: bool
    is_default_output: bool


def rescan() -> None:
    """Make PortAudio scan host APIs and devices again (e.g. after a JACK server started)."""
    sd._terminate()
    sd._initialize()


def list_devices() -> list[DeviceInfo]:
    """All devices PortAudio sees, with PortAudio's defaults marked."""
    host_apis = sd.query_hostapis()
    try:
        default_in, default_out = sd.default.device
    except (TypeError, ValueError):
        default_in = default_out = -1
    if default_in is None or default_in < 0 or default_out is None or default_out < 0:
        # sd.default.device is (-1, -1) until set; ask PortAudio for the host defaults
        for api in host_apis:
            if default_in is None or default_in < 0:
                default_in = api["default_input_device"]
            if default_out is None or default_out < 0:
                default_out = api["default_output_device"]
    devices = []
    for index, d in enumerate(sd.query_devices()):
        devices.append(
            DeviceInfo(
                index=index,
                name=d["name"],
                host_api=host_apis[d["hostapi"]]["name"],
                max_input_channels=int(d["max_input_channels"]),
                max_output_channels=int(d["max_output_channels"]),
                default_sample_rate=float(d["default_samplerate"]),
                is_default_input=index == default_in,
                is_default_output=index == default_out,
            )
        )
    return devices


def resolve_device(spec: str | int | None, kind: str) -> DeviceInfo:
    """Find the device for ``spec``: ``None`` (the default), an index, or part of a name.

    Args:
        spec: device index, a case-insensitive substring of its name, or None for the default.
        kind: ``"input"`` or ``"output"``.

    Raises:
        DeviceError: when nothing (or more than one device) matches, or the device has no
            channels of that kind.
    """
    if kind not in ("input", "output"):
        raise ValueError(f"kind must be 'input' or 'output', got {kind!r}")
    devices = list_devices()
    usable = [
        d for d in devices
        if (d.max_input_channels if kind == "input" else d.max_output_channels) > 0
    ]
    if not usable:
        raise DeviceError(f"no {kind} device: " + NO_DEVICE_HINT)
    if spec is None or spec == "" or spec == "default":
        for d in usable:
            if d.is_default_input if kind == "input" else d.is_default_output:
                return d
        return usable[0]
    if isinstance(spec, int) or (isinstance(spec, str) and spec.isdigit()):
        index = int(spec)
        for d in devices:
            if d.index == index:
                if d not in usable:
                    raise DeviceError(f"device {index} ({d.name}) has no {kind} channels")
                return d
        raise DeviceError(f"no device with index {index}; `noisyneuron devices` lists them")
    matches = [d for d in usable if spec.lower() in d.name.lower()]
    if not matches:
        raise DeviceError(
            f"no {kind} device matches {spec!r}; `noisyneuron devices` lists them"
        )
    exact = [d for d in matches if d.name.lower() == spec.lower()]
    if len(exact) == 1:
        return exact[0]
    if len(matches) > 1:
        names = ", ".join(f"{d.index}: {d.name}" for d in matches)
        raise DeviceError(f"{spec!r} matches several {kind} devices ({names}); give the index")
    return matches[0]


def check_stream_settings(
    device: DeviceInfo, kind: str, sample_rate: float, channels: int
) -> None:
    """Raise DeviceError (one line) if ``device`` refuses ``sample_rate`` Hz with ``channels``."""
    check = sd.check_input_settings if kind == "input" else sd.check_output_settings
    try:
        check(device=device.index, samplerate=sample_rate, channels=channels, dtype="float32")
    except sd.PortAudioError as exc:
        raise DeviceError(
            f"{kind} device {device.index} ({device.name}) cannot run {channels} channel(s) at "
            f"{sample_rate:g} Hz: {exc.args[0] if exc.args else exc}; try --samplerate "
            f"{device.default_sample_rate:g}"
        ) from None
