"""gato_dash.formatting: each kind of value written the one way every page shows it."""
import math
import time

from gato_dash import formatting as fmt


def test_numbers():
    assert fmt.number(None) == fmt.MISSING
    assert fmt.number(math.nan) == fmt.MISSING
    assert fmt.number(0.123456789) == "0.1235"
    assert fmt.number(0.123456789, 6) == "0.123457"
    assert fmt.number(12) == "12"
    assert fmt.number(150000) == "150,000"
    assert fmt.number(True) == "yes" and fmt.number(False) == "no"
    assert fmt.number([5, 10]) == "5, 10"
    assert fmt.number("adam") == "adam"


def test_significance_has_three_decimals_and_missing_for_non_numbers():
    assert fmt.z_value(2.34567) == "2.346"
    assert fmt.z_value(3) == "3.000"
    for absent in (None, math.nan, math.inf, "2.3", True):
        assert fmt.z_value(absent) == fmt.MISSING


def test_timestamps_from_unix_seconds_and_iso_text():
    when = time.mktime((2024, 3, 9, 14, 5, 7, 0, 0, -1))  # local time, like the pages
    assert fmt.timestamp(when) == "2024-03-09 14:05"
    assert fmt.timestamp(when, seconds=True) == "2024-03-09 14:05:07"
    assert fmt.timestamp("2024-03-09T14:05:07") == "2024-03-09 14:05"
    assert fmt.epoch_seconds("2024-03-09T14:05:07") == when
    for absent in (None, "", "yesterday"):
        assert fmt.timestamp(absent) == fmt.MISSING


def test_durations_in_words_and_as_a_clock():
    assert fmt.duration(12.34) == "12.3 s"
    assert fmt.duration(245) == "4 min 05 s"
    assert fmt.duration(2 * 3600 + 7 * 60 + 20) == "2 h 07 min"
    assert fmt.clock(245) == "4:05"
    assert fmt.clock(2 * 3600 + 7 * 60) == "2:07:00"
    for absent in (None, -1.0, math.nan):
        assert fmt.duration(absent) == fmt.MISSING
        assert fmt.clock(absent) == fmt.MISSING
