from trad.store.filters import where


def test_only_the_filters_given_make_the_clause():
    assert where(("status = %s", "running"), ("batch_id = %s", None), ("symbol = %s", "BTC")) == (
        "WHERE status = %s AND symbol = %s", ["running", "BTC"])


def test_no_filter_given_matches_every_row():
    assert where(("status = %s", None)) == ("", [])
    assert where() == ("", [])


def test_falsy_values_still_filter():
    assert where(("batch_id = %s", 0), ("symbol = %s", "")) == ("WHERE batch_id = %s AND symbol = %s", [0, ""])
