from conftest import decision


def prefs(opt_out=(), quiet=None):
    return {"opt_out": [{"category": c, "channel": h} for c, h in opt_out], "quiet_hours": quiet}


def test_a_user_with_no_preferences_gets_everything(api) -> None:
    status, body = decision(api, "new-user", category="reminders", channel="push", at="2026-03-02T12:00:00Z")
    assert status == 200
    assert body["send"] is True and isinstance(body["reason"], str)


def test_an_opt_out_stops_that_category_on_that_channel_only(api) -> None:
    api("PUT", "/users/ada/preferences", prefs(opt_out=[("marketing", "email")]))
    at = "2026-03-02T12:00:00Z"
    assert decision(api, "ada", category="marketing", channel="email", at=at)[1]["send"] is False
    assert decision(api, "ada", category="marketing", channel="push", at=at)[1]["send"] is True
    assert decision(api, "ada", category="reminders", channel="email", at=at)[1]["send"] is True


def test_quiet_hours_within_a_day(api) -> None:
    api("PUT", "/users/bo/preferences", prefs(quiet={"start": "13:00", "end": "15:00"}))
    assert decision(api, "bo", category="reminders", channel="push", at="2026-03-02T14:10:00Z")[1]["send"] is False
    assert decision(api, "bo", category="reminders", channel="push", at="2026-03-02T15:00:00Z")[1]["send"] is True


def test_quiet_hours_across_midnight(api) -> None:
    api("PUT", "/users/cy/preferences", prefs(quiet={"start": "22:00", "end": "07:00"}))
    for at in ("2026-03-02T23:30:00Z", "2026-03-03T02:00:00Z", "2026-03-03T06:59:00Z"):
        assert decision(api, "cy", category="reminders", channel="push", at=at)[1]["send"] is False, at
    for at in ("2026-03-02T21:59:00Z", "2026-03-03T07:00:00Z", "2026-03-03T12:00:00Z"):
        assert decision(api, "cy", category="reminders", channel="push", at=at)[1]["send"] is True, at


def test_security_is_always_sent(api) -> None:
    api("PUT", "/users/di/preferences", prefs(opt_out=[("security", "email")], quiet={"start": "00:00",
                                                                                         "end": "23:59"}))
    assert decision(api, "di", category="security", channel="email", at="2026-03-02T12:00:00Z")[1]["send"] is True


def test_missing_or_malformed_parameters_are_400(api) -> None:
    assert decision(api, "ed", category="reminders", channel="push")[0] == 400
    assert decision(api, "ed", category="reminders", at="2026-03-02T12:00:00Z")[0] == 400
    assert decision(api, "ed", category="reminders", channel="push", at="yesterday")[0] == 400
