"""The control surface: addresses, unit / normalised / display values, one path with listeners."""

from __future__ import annotations

import math

import pytest

from noisyneuron.control.surface import ControlSurface, UnknownControl
from noisyneuron.realtime.chains import build_chain


@pytest.fixture
def surface():
    return ControlSurface(build_chain("karaoke"))


def test_every_parameter_bypass_and_mix_has_an_address(surface):
    chain = surface.chain
    expected = {f"/noisyneuron/{p.name}/{n}" for p in chain.processors for n in p.parameters}
    expected |= {f"/noisyneuron/{p.name}/bypass" for p in chain.processors}
    expected.add("/noisyneuron/chain/mix")
    assert set(surface.controls) == expected
    assert len(surface) == len(expected)


def test_find_by_address_key_and_unique_name(surface):
    address = next(a for a in surface.controls if a.endswith("/vocals"))
    control = surface.find(address)
    assert surface.find(control.key) is control
    assert surface.find("vocals") is control
    with pytest.raises(UnknownControl, match="known"):
        surface.find("/noisyneuron/karaoke/nope")
    with pytest.raises(UnknownControl):
        surface.find("nope")


def test_ambiguous_bare_name_is_refused():
    from noisyneuron.realtime.chain import Chain
    from noisyneuron.realtime.processors.centre_cut import CentreCutKaraoke

    surface = ControlSurface(Chain([CentreCutKaraoke("a"), CentreCutKaraoke("b")]))
    with pytest.raises(UnknownControl, match="ambiguous"):
        surface.find("vocals")
    assert surface.find("b.vocals").processor == "b"


def test_set_unit_normalized_clamps_and_notifies_with_source(surface):
    seen = []
    unsubscribe = surface.subscribe(lambda c, v, s: seen.append((c.key, v, s)))
    control = surface.find("vocals")
    p = control.parameter
    assert surface.set("vocals", p.maximum + 100, source="osc") == p.maximum
    assert surface.set(control, 0.0, normalized=True, source="midi") == p.minimum
    assert surface.set("vocals", -math.inf) == p.minimum
    assert surface.get("vocals").display == p.display()
    assert seen == [(control.key, p.maximum, "osc"), (control.key, p.minimum, "midi"), (control.key, p.minimum, "api")]
    unsubscribe()
    surface.set("vocals", p.default)
    assert len(seen) == 3


def test_nan_changes_nothing(surface):
    before = surface.get("chain.mix").value
    with pytest.raises(ValueError):
        surface.set("chain.mix", float("nan"))
    assert surface.get("chain.mix").value == before


def test_broken_listener_is_counted_not_raised(surface):
    def broken(*_):
        raise RuntimeError("bug")

    surface.subscribe(broken)
    surface.set("chain.mix", 50)
    assert surface.listener_errors == 1
    assert surface.get("chain.mix").value == 50


def test_toggle_and_snapshot_restore(surface):
    bypass = next(c for c in surface if c.name == "bypass")
    assert bypass.is_toggle
    assert surface.toggle(bypass) == 1.0
    assert surface.toggle(bypass) == 0.0
    surface.set("chain.mix", 40)
    saved = surface.snapshot()
    surface.set("chain.mix", 100)
    assert surface.restore({**saved, "other.thing": 3.0}) == ["other.thing"]
    assert surface.get("chain.mix").value == 40
