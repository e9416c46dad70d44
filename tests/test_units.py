"""Speed is worded one way in every command."""

from noisyneuron.units import speed_words


def test_speed_is_said_as_times_faster_or_slower_than_real_time():
    assert speed_words(55.0, 10.0) == "5.5x faster than real time"
    assert speed_words(180.0, 3.1) == "58x faster than real time"
    assert speed_words(10.0, 20.0) == "2.0x slower than real time"
    assert speed_words(10.0, 10.0) == "1.0x faster than real time"
    assert speed_words(10.0, 0.0) == "instantly"


def test_every_command_uses_it(tmp_path):
    import numpy as np
    import soundfile as sf

    from noisyneuron.realtime.chains import build_chain
    from noisyneuron.realtime.offline import process_file

    song = tmp_path / "a.wav"
    sf.write(str(song), np.zeros((44100, 2), dtype=np.float32), 44100)
    report = process_file(song, tmp_path / "b.wav", build_chain("centre-cut"), progress=False)
    assert "faster than real time" in report.summary() or "slower than real time" in report.summary()
