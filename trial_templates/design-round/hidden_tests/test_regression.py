def test_health(api) -> None:
    assert api("GET", "/healthz") == (200, {"ok": True})


def test_preferences_round_trip_and_validation(api) -> None:
    prefs = {"opt_out": [{"category": "marketing", "channel": "email"}], "quiet_hours": {"start": "22:00",
                                                                                          "end": "07:00"}}
    assert api("PUT", "/users/fa/preferences", prefs) == (200, prefs)
    assert api("GET", "/users/fa/preferences") == (200, prefs)
    assert api("PUT", "/users/fa/preferences", {"quiet_hours": {"start": "7pm", "end": "07:00"}})[0] == 400
