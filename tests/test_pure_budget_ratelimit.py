"""The retry budget and the rate-limit header parser."""

from __future__ import annotations

import math
import random

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trestfly._budget import BudgetSettings, RetryBudget
from trestfly._ratelimit import Quota, parse_quota, says_quota_spent, scan_headers
from trestfly.errors import UnexpectedValueError

WALL = 1_800_000_000.0


def test_budget_starts_full_and_refuses_when_many_fail() -> None:
    budget = RetryBudget(BudgetSettings(capacity=3, ratio=0.5, per_second=0), 0.0)
    assert [budget.try_spend(0.0, retrying_alone=False) for _ in range(4)] == [
        True,
        True,
        True,
        False,
    ]
    assert budget.denied == 1
    budget.on_success(0.0)
    budget.on_success(0.0)
    assert budget.level(0.0) == pytest.approx(1.0)
    assert budget.try_spend(0.0, retrying_alone=False)


def test_budget_never_refuses_a_request_failing_alone() -> None:
    budget = RetryBudget(BudgetSettings(capacity=1, ratio=0, per_second=0), 0.0)
    assert all(budget.try_spend(0.0, retrying_alone=True) for _ in range(20))
    assert budget.denied == 0


def test_budget_refills_over_time_up_to_capacity() -> None:
    budget = RetryBudget(BudgetSettings(capacity=2, ratio=0, per_second=1), 0.0)
    budget.try_spend(0.0, retrying_alone=False)
    budget.try_spend(0.0, retrying_alone=False)
    assert budget.level(0.5) == pytest.approx(0.5)
    assert budget.level(100.0) == 2.0


def test_disabled_budget_always_allows() -> None:
    budget = RetryBudget(BudgetSettings(capacity=0, enabled=False), 0.0)
    assert budget.try_spend(0.0, retrying_alone=False)


def test_budget_absorbs_the_dips_of_a_failure_rate_inside_its_ratio() -> None:
    # Each failure takes a token and each success gives back 0.2: at 12% failures the
    # level is a random walk drifting up, whose dips emptied a bucket fixed at 10 tokens
    # in most runs of 20,000 requests.  Sized by the last window's successes, it holds.
    draws = random.Random(12)
    budget = RetryBudget(BudgetSettings(), 0.0)
    now = 0.0
    for _ in range(23_000):
        now += 0.001  # 1,000 answers a second
        if draws.random() < 0.12:
            assert budget.try_spend(now, retrying_alone=False)
        else:
            budget.on_success(now)
    assert budget.denied == 0


def test_budget_after_heavy_traffic_bounds_an_outage_by_recent_successes() -> None:
    budget = RetryBudget(BudgetSettings(capacity=10, ratio=0.2, per_second=0), 0.0)
    for step in range(1, 1001):
        budget.on_success(step / 1000)  # 1,000 successes in the last second
    # About 0.2 x 1,000 retries (the deposits, less a second's decay), then no more.
    allowed = 0
    while budget.try_spend(1.0, retrying_alone=False):
        allowed += 1
    assert 180 <= allowed <= 200
    # Old successes expire: a minute later the bucket is back to its capacity.
    for step in range(1, 1001):
        budget.on_success(2 + step / 1000)
    assert budget.level(63.0) <= 10 + 1e-9
    assert budget.level(63.0) == pytest.approx(10.0, abs=0.1)


def test_budget_settings_keep_their_positional_order() -> None:
    # window came after enabled: BudgetSettings(10, 0.2, 1.0, False) still turns it off.
    assert BudgetSettings(10, 0.2, 1.0, False).enabled is False


def test_budget_window_zero_keeps_the_bucket_at_capacity() -> None:
    budget = RetryBudget(BudgetSettings(capacity=3, ratio=0.5, per_second=0, window=0), 0.0)
    for _ in range(100):
        budget.on_success(0.0)
    assert budget.level(0.0) == 3.0


@pytest.mark.parametrize(
    ("settings", "needle"),
    [
        ({"capacity": -1}, "capacity"),
        # NaN compares false with everything: it passed ">= 0" and refused every retry.
        ({"capacity": math.nan}, "capacity"),
        ({"per_second": math.nan}, "per_second"),
        ({"ratio": math.inf}, "ratio"),
        ({"window": -1}, "window"),
        ({"window": math.nan}, "window"),
        ({"enabled": "no"}, "enabled"),
        # An int too large for a float: math.isfinite raised a bare OverflowError.
        ({"capacity": 10**400}, "capacity"),
    ],
)
def test_bad_budget_settings(settings: dict[str, object], needle: str) -> None:
    with pytest.raises(UnexpectedValueError, match=needle):
        BudgetSettings(**settings)  # type: ignore[arg-type]


def headers(**values: str) -> httpx.Headers:
    return httpx.Headers({key.replace("_", "-"): value for key, value in values.items()})


def test_github_headers_epoch_and_delta_reset() -> None:
    epoch = headers(
        X_RateLimit_Limit="60", X_RateLimit_Remaining="0", X_RateLimit_Reset=str(int(WALL) + 30)
    )
    assert parse_quota(epoch, WALL) == Quota(remaining=0, reset_after=30.0, limit=60)
    delta = headers(X_RateLimit_Remaining="4", X_RateLimit_Reset="2.5")
    assert parse_quota(delta, WALL) == Quota(remaining=4, reset_after=2.5, limit=None)
    past = headers(X_RateLimit_Remaining="4", X_RateLimit_Reset=str(int(WALL) - 30))
    assert parse_quota(past, WALL) == Quota(remaining=4, reset_after=0.0, limit=None)


def test_the_hyphenated_x_rate_limit_family_is_read() -> None:
    # X (Twitter), Okta and Zendesk: ignored, a spent window was hammered (300 requests
    # from 50 calls into a window the server had said was spent for 60 s).
    twitter = headers(
        x_rate_limit_limit="900", x_rate_limit_remaining="0", x_rate_limit_reset=str(int(WALL) + 60)
    )
    assert parse_quota(twitter, WALL) == Quota(remaining=0, reset_after=60.0, limit=900)
    assert scan_headers([(b"x-rate-limit-remaining", b"0")]) == ((), True)
    # Where both are sent (a gateway's beside the origin's), cautiously.
    both = headers(
        X_RateLimit_Remaining="5",
        X_RateLimit_Reset="10",
        X_RateLimit_Limit="60",
        x_rate_limit_remaining="0",
        x_rate_limit_reset="30",
    )
    assert parse_quota(both, WALL) == Quota(remaining=0, reset_after=30.0, limit=60)


def test_discords_delay_is_preferred_to_its_epoch() -> None:
    # The epoch is read against the client's clock; the delay beside it is not.
    discord = headers(
        X_RateLimit_Limit="5",
        X_RateLimit_Remaining="0",
        X_RateLimit_Reset=str(WALL + 400),
        X_RateLimit_Reset_After="1.25",
    )
    assert parse_quota(discord, WALL) == Quota(remaining=0, reset_after=1.25, limit=5)


def test_ietf_structured_field_form() -> None:
    quota = parse_quota(
        headers(RateLimit='"default";r=37;t=5', RateLimit_Policy='"default";q=100;w=60'), WALL
    )
    assert quota == Quota(remaining=37, reset_after=5.0, limit=100, window=60.0)
    assert quota is not None and quota.policy_rate == pytest.approx(100 / 60)


def test_ietf_older_forms() -> None:
    combined = headers(RateLimit="limit=100, remaining=3, reset=2")
    assert parse_quota(combined, WALL) == Quota(3, 2.0, 100)
    separate = headers(RateLimit_Limit="10", RateLimit_Remaining="7", RateLimit_Reset="4")
    assert parse_quota(separate, WALL) == Quota(7, 4.0, 10)
    old_policy = headers(RateLimit_Remaining="7", RateLimit_Reset="4", RateLimit_Policy="10;w=1")
    assert parse_quota(old_policy, WALL) == Quota(7, 4.0, 10, 1.0)


def test_a_draft_reset_sent_as_a_unix_time_is_an_instant_not_a_delay() -> None:
    # GitLab sends RateLimit-Reset as a Unix time: read as seconds, it closed the origin
    # for 57 years (or paced it at one request a month).
    gitlab = headers(
        RateLimit_Limit="600", RateLimit_Remaining="595", RateLimit_Reset=str(int(WALL) + 60)
    )
    assert parse_quota(gitlab, WALL) == Quota(595, 60.0, 600)
    in_ms = headers(RateLimit_Remaining="0", RateLimit_Reset=str(int(WALL * 1000) + 5000))
    assert parse_quota(in_ms, WALL) == Quota(0, 5.0, None)
    combined = headers(RateLimit=f"limit=100, remaining=0, reset={int(WALL) + 30}")
    assert parse_quota(combined, WALL) == Quota(0, 30.0, 100)
    structured = headers(RateLimit=f'"default";r=0;t={int(WALL) + 2}')
    assert parse_quota(structured, WALL) == Quota(0, 2.0, None)


def test_policies_of_other_units_are_no_request_quota() -> None:
    # Draft 08's quota units: 500 bytes left were read as 500 requests (and a spent
    # concurrency quota as a spent request quota).
    only_bytes = headers(
        RateLimit_Policy='"bytes";q=1000000;qu="content-bytes";w=60',
        RateLimit='"bytes";r=500;t=30',
    )
    assert parse_quota(only_bytes, WALL) is None
    both = headers(
        RateLimit_Policy='"bytes";q=1000000;qu="content-bytes";w=60, "req";q=100;w=60',
        RateLimit='"bytes";r=0;t=30, "req";r=50;t=30',
    )
    assert parse_quota(both, WALL) == Quota(50, 30.0, 100, 60.0)
    explicit = headers(RateLimit_Policy='"req";q=100;qu="request";w=60', RateLimit='"req";r=5')
    assert parse_quota(explicit, WALL) == Quota(5, None, 100, 60.0)


def test_entries_named_by_a_token_are_paired_with_their_policies() -> None:
    # The draft names an item by a String or a Token; only quoted names were read, so
    # "burst;r=0" was paired with no policy and a content-bytes quota of 0 bytes left
    # was read as a spent request quota (a 403 then counted as a throttle).
    structured = headers(
        RateLimit="burst;r=0;t=1, day;r=4000;t=80000",
        RateLimit_Policy="burst;q=100;w=60, day;q=5000;w=86400",
    )
    assert parse_quota(structured, WALL) == Quota(0, 1.0, 100, 60.0)
    both = headers(
        RateLimit_Policy='bytes;q=1000000;qu="content-bytes";w=60, req;q=100;w=60',
        RateLimit="bytes;r=0;t=30, req;r=50;t=30",
    )
    assert parse_quota(both, WALL) == Quota(50, 30.0, 100, 60.0)
    only_bytes = headers(
        RateLimit_Policy='bytes;q=1000000;qu="content-bytes";w=60', RateLimit="bytes;r=500"
    )
    assert parse_quota(only_bytes, WALL) is None
    # The sf-token grammar: "*" first, then ":" and "/" among token characters.
    odd = headers(
        RateLimit="*a:b/c-1;r=3, x;r=9", RateLimit_Policy="x;q=10;w=100, *a:b/c-1;q=5;w=2"
    )
    assert parse_quota(odd, WALL) == Quota(3, None, 5, 2.0)
    # A bare number is no name: an older draft's policy list still reads as before.
    older = headers(RateLimit_Remaining="7", RateLimit_Policy="10;w=1")
    assert parse_quota(older, WALL) == Quota(7, None, 10, 1.0)


def test_a_parameter_with_an_exponent_or_a_unit_is_ignored_not_cut_short() -> None:
    # Structured-field numbers have neither: "t=1.5e2" was read as 1.5 s, "t=5m" as 5 s.
    for reset in ("1.5e2", "5m", "5s"):
        assert parse_quota(headers(RateLimit=f'"x";r=5;t={reset}'), WALL) == Quota(5, None, None)
    assert parse_quota(headers(RateLimit='"x";r=5;t=5 ;w=1'), WALL) == Quota(5, 5.0, None)


def test_the_older_drafts_list_form_of_ratelimit_limit() -> None:
    """Draft 00-02's own example: the first item is the limit, the others its policies
    (it was read as no limit at all, so the quota's rate was never known)."""
    listed = headers(
        RateLimit_Limit="10, 10;w=1, 1000;w=3600", RateLimit_Remaining="9", RateLimit_Reset="1"
    )
    assert parse_quota(listed, WALL) == Quota(9, 1.0, 10, 1.0)
    # The first item's own window wins; without one, no other quota's window is taken.
    own = headers(RateLimit_Limit="100;w=60, 1000;w=3600", RateLimit_Remaining="9")
    assert parse_quota(own, WALL) == Quota(9, None, 100, 60.0)
    other = headers(RateLimit_Limit="10, 1000;w=3600", RateLimit_Remaining="9")
    assert parse_quota(other, WALL) == Quota(9, None, 10, None)
    # A first item that is not a number is no limit, whatever follows it.
    broken = headers(RateLimit_Limit="ten, 10;w=1", RateLimit_Remaining="9")
    assert parse_quota(broken, WALL) == Quota(9, None, None, None)


def test_github_counts_take_the_window_of_a_draft_policy() -> None:
    both = headers(
        X_RateLimit_Limit="100",
        X_RateLimit_Remaining="40",
        X_RateLimit_Reset=str(int(WALL) + 1),
        RateLimit='"default";r=40;t=1',
        RateLimit_Policy='"default";q=100;w=1',
    )
    quota = parse_quota(both, WALL)
    assert quota == Quota(40, 1.0, 100, 1.0)
    assert quota is not None and quota.policy_rate == 100.0


def test_several_policies_pair_each_quota_with_its_own_window() -> None:
    policies = "10;w=1, 50;w=60, 1000;w=3600"
    # The limit reported is the 10/s policy's: its window, not the last one listed
    # (10 per hour paced the client at 0.0026/s where the server allowed 10/s).
    separate = headers(RateLimit_Limit="10", RateLimit_Remaining="7", RateLimit_Policy=policies)
    assert parse_quota(separate, WALL) == Quota(7, None, 10, 1.0)
    # Without a limit of its own, the policy of the lowest rate binds (1000 an hour).
    bare = headers(RateLimit_Remaining="7", RateLimit_Policy=policies)
    quota = parse_quota(bare, WALL)
    assert quota == Quota(7, None, 1000, 3600.0)
    structured = headers(
        RateLimit='"burst";r=0;t=1, "day";r=4000;t=80000',
        RateLimit_Policy='"burst";q=100;w=60, "day";q=5000;w=86400',
    )
    # The spent burst binds, with its own policy (it was read as 4000 left).
    assert parse_quota(structured, WALL) == Quota(0, 1.0, 100, 60.0)
    # The older combined form: its limit picks its own policy's window (it got the
    # hour's, and paced at 100 an hour where the server allowed 100 a minute).
    older = headers(
        RateLimit="limit=100, remaining=37, reset=5", RateLimit_Policy="100;w=60, 1000;w=3600"
    )
    assert parse_quota(older, WALL) == Quota(37, 5.0, 100, 60.0)


def test_huge_numbers_never_break_a_request() -> None:
    digits = "9" * 400  # float() of it is inf
    assert parse_quota(headers(RateLimit=f'"d";r={digits};t=1'), WALL) is None
    assert parse_quota(headers(RateLimit=f'"d";r=1;t={digits}'), WALL) == Quota(1, None, None)
    policy = headers(RateLimit_Remaining="1", RateLimit_Policy=f"q={digits};w=1")
    assert parse_quota(policy, WALL) == Quota(1, None, None, 1.0)


def test_an_epoch_reset_in_milliseconds_is_read_as_one() -> None:
    millis = headers(X_RateLimit_Remaining="0", X_RateLimit_Reset=str(int(WALL + 30) * 1000))
    quota = parse_quota(millis, WALL)
    assert quota is not None and quota.reset_after == pytest.approx(30, abs=1)


def test_no_or_broken_headers_mean_no_quota() -> None:
    assert parse_quota(headers(), WALL) is None
    assert parse_quota(headers(X_RateLimit_Remaining="lots"), WALL) is None
    assert parse_quota(headers(RateLimit="garbage"), WALL) is None
    assert parse_quota(headers(RateLimit_Remaining="-3"), WALL) is None


def test_a_field_sent_twice_is_read_cautiously_not_dropped() -> None:
    # A gateway adding its own copy beside the origin's: httpx joins them with ", ".
    github = httpx.Headers(
        [
            ("X-RateLimit-Remaining", "5"),
            ("X-RateLimit-Remaining", "0"),
            ("X-RateLimit-Reset", str(int(WALL) + 10)),
            ("X-RateLimit-Reset", str(int(WALL) + 30)),
            ("X-RateLimit-Limit", "60, 5000"),
        ]
    )
    assert parse_quota(github, WALL) == Quota(remaining=0, reset_after=30.0, limit=60)
    draft = httpx.Headers(
        [("RateLimit-Remaining", "0"), ("RateLimit-Remaining", "x"), ("RateLimit-Reset", "4, 2")]
    )
    assert parse_quota(draft, WALL) == Quota(0, 4.0, None)
    assert parse_quota(httpx.Headers([("X-RateLimit-Remaining", "x, y")]), WALL) is None


def test_403_with_zero_remaining_is_a_throttle() -> None:
    assert says_quota_spent(403, Quota(0, 10.0, 60))
    assert not says_quota_spent(403, Quota(1, 10.0, 60))
    assert not says_quota_spent(403, None)
    assert not says_quota_spent(429, Quota(0, 10.0, 60))


@given(
    st.dictionaries(
        st.sampled_from(
            [
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
                "ratelimit",
                "ratelimit-policy",
                "ratelimit-remaining",
                "ratelimit-reset",
                "x-ratelimit-limit",
            ]
        ),
        st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=30),
    )
)
def test_any_header_values_never_crash(values: dict[str, str]) -> None:
    quota = parse_quota(httpx.Headers(values), WALL)
    assert quota is None or (
        quota.remaining >= 0 and (quota.reset_after is None or quota.reset_after >= 0)
    )


def test_scan_headers_finds_retry_after_and_quota_headers_in_one_pass() -> None:
    from trestfly._ratelimit import scan_headers

    assert scan_headers([(b"Content-Type", b"application/json")]) == ((), False)
    assert scan_headers([(b"Retry-After", b"2.5")]) == (("2.5",), False)
    assert scan_headers([(b"X-RateLimit-Remaining", b"3")]) == ((), True)
    assert scan_headers([(b"RateLimit", b'"d";r=1;t=2'), (b"retry-after", b"7")]) == (("7",), True)
    assert scan_headers([(b"X-RateLimited-By", b"proxy")]) == ((), False)
    # Every field, in order: the last one alone was kept.
    assert scan_headers([(b"Retry-After", b"30"), (b"retry-after", b"1")]) == (("30", "1"), False)


def test_an_extension_parameter_ending_in_a_known_key_is_ignored() -> None:
    """RFC 8941 keys hold "-", "_", "." and "*": the "t" of "x-t" is not the reset."""

    def quota(entry: str) -> Quota | None:
        headers = {"RateLimit-Policy": '"default";q=100;w=60', "RateLimit": entry}
        return parse_quota(httpx.Headers(headers), WALL)

    reset = quota('"default";r=0;t=5;x-t=3600')
    assert reset is not None and reset.reset_after == 5.0
    left = quota('"default";r=50;t=5;ext-r=0')
    assert left is not None and left.remaining == 50
    # A key ending in "reset" does not make the entries the older dictionary form,
    # whose one item took the last entry's values: 4,000 left, the spent burst unseen.
    policies = '"burst";q=10;w=1, "day";q=5000;w=86400'
    entries = '"burst";r=0;t=1;x-reset=1, "day";r=4000;t=3600'
    spent = parse_quota(httpx.Headers({"RateLimit-Policy": policies, "RateLimit": entries}), WALL)
    assert spent is not None and (spent.remaining, spent.reset_after) == (0, 1.0)
    named = quota('"default";r=7;t=2;x-reset=9')
    assert named is not None and (named.remaining, named.reset_after) == (7, 2.0)
