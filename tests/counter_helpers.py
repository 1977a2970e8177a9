"""A counter panel's settings on the test broker: for the counter's tests and the watchdog's."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from office_helpers import OfficeBroker

from common.counter_settings import CounterSettings, PanelSettings
from common.settings import DataSettings, DeviceSettings, Settings, SiteSettings

FULL = PanelSettings(
    counter="1",
    next=17,
    recall=27,
    no_show=22,
    done=23,
    transfer=24,
    park=25,
    pause=5,
    ready_led=6,
    serving_led=13,
    offline_led=19,
    buzzer=26,
)
SMALL = PanelSettings(counter="2", next=16, recall=20, offline_led=12, serving_led=21)


def panel_settings(broker: OfficeBroker, tmp_path: Path, **counter: Any) -> Settings:
    config = {"pin_factory": "mock", "display": "simulated", "panels": (FULL, SMALL), **counter}
    return Settings(
        role="counter",
        site=SiteSettings(id=broker.site, languages=("en", "sk")),
        mqtt=broker.mqtt("panel-p1"),
        data=DataSettings(dir=tmp_path / "panel"),
        device=DeviceSettings(id="p1"),
        counter=CounterSettings(**config),
    )
