"""The city's store on PostgreSQL: its schema, branches, users and the exactly-once rule."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from argon2 import PasswordHasher
from city_helpers import T0, batch
from sqlalchemy import Column, Integer, MetaData, inspect, text
from web_helpers import older_hasher

from city.store import HEAD_REVISION, MAX_SEQ, VERSION_TABLE, CityError, CityStore, StoreResult
from city.tables import metadata
from sync_agent.broker_accounts import verify_password
from sync_agent.city_protocol import CatalogueService, HistoryBatch

pytestmark = pytest.mark.postgres


def test_migrations_give_exactly_the_tables(city_store: CityStore) -> None:
    assert city_store.revision() == HEAD_REVISION
    city_store.upgrade()  # again: nothing to do
    with city_store.db.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"compare_type": True, "version_table": VERSION_TABLE}
        )
        assert compare_metadata(context, metadata) == []
        changed = MetaData(naming_convention=metadata.naming_convention)
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
        changed.tables["branch_events"].append_column(Column("extra", Integer))
        assert compare_metadata(context, changed) != []
    tables = set(inspect(city_store.db).get_table_names())
    assert "alembic_version_city" in tables
    assert "alembic_version" not in tables


def test_a_branch_gets_an_account_whose_password_is_shown_once(city_store: CityStore) -> None:
    branch, password = city_store.add_branch("kosice-centrum", name="Centrum", address="Hlavná 1")
    assert branch.username == "branch-kosice-centrum"
    stored = city_store.branch("kosice-centrum")
    assert stored is not None
    assert verify_password(password, stored.password_hash)
    assert password not in repr(stored)
    with pytest.raises(CityError, match="exists"):
        city_store.add_branch("kosice-centrum", name="Again", address="x")
    with pytest.raises(CityError, match="site id"):
        city_store.add_branch("a/#", name="Bad", address="x")
    assert [b.site for b in city_store.branches()] == ["kosice-centrum"]
    assert city_store.remove_branch("kosice-centrum")
    assert not city_store.remove_branch("kosice-centrum")


def stored_seqs(store: CityStore, site: str) -> list[int]:
    return [e.seq for e in store.events(date(2026, 1, 1), date(2027, 1, 1), sites=[site])]


def test_batches_are_stored_exactly_once(city_store: CityStore) -> None:
    city_store.add_branch("a", name="A", address="x")
    assert city_store.store_batch("a", batch("a", 1, 10)) == StoreResult(ack=10, stored=10)
    # The same batch again (QoS 1 duplicate) and an overlapping resend.
    assert city_store.store_batch("a", batch("a", 1, 10)) == StoreResult(ack=10, stored=0)
    assert city_store.store_batch("a", batch("a", 5, 15)) == StoreResult(ack=15, stored=5)
    # A gap the branch can still fill: nothing stored, the old ack again.
    assert city_store.store_batch("a", batch("a", 20, 25)) == StoreResult(
        ack=15, stored=0, gap=True
    )
    assert city_store.store_batch("a", batch("a", 16, 25)) == StoreResult(ack=25, stored=10)
    assert stored_seqs(city_store, "a") == list(range(1, 26))
    progress = city_store.progress()["a"]
    assert (progress.seq, progress.first_seq) == (25, 1)


def test_batches_that_waited_are_stored_together_by_the_same_rule(city_store: CityStore) -> None:
    city_store.add_branch("a", name="A", address="x")
    city_store.add_branch("b", name="B", address="x")
    results = city_store.store_batches(
        [
            ("a", batch("a", 1, 10)),
            ("b", batch("b", 1, 5)),
            ("a", batch("a", 5, 12)),  # overlaps what the same group stored
            ("b", batch("b", 9, 12)),  # a gap
            ("a", batch("a", 1, 3)),  # a duplicate
        ]
    )
    assert results == [
        StoreResult(ack=10, stored=10),
        StoreResult(ack=5, stored=5),
        StoreResult(ack=12, stored=2),
        StoreResult(ack=5, stored=0, gap=True),
        StoreResult(ack=12, stored=0),
    ]
    assert stored_seqs(city_store, "a") == list(range(1, 13))
    assert stored_seqs(city_store, "b") == list(range(1, 6))


def test_a_group_with_a_refused_batch_stores_nothing(city_store: CityStore) -> None:
    city_store.add_branch("a", name="A", address="x")
    with pytest.raises(CityError, match="no branch"):
        city_store.store_batches([("a", batch("a", 1, 3)), ("z", batch("z", 1, 3))])
    assert city_store.progress()["a"].seq == 0
    assert stored_seqs(city_store, "a") == []


def test_a_branch_with_pruned_history_starts_at_its_first_available(
    city_store: CityStore,
) -> None:
    city_store.add_branch("b", name="B", address="x")
    assert city_store.progress()["b"].seq == 0
    # It still holds 40..: starting at 45 would skip rows it has.
    assert city_store.store_batch("b", batch("b", 45, 50, first_available=40)).gap
    result = city_store.store_batch("b", batch("b", 40, 50, first_available=40))
    assert result == StoreResult(ack=50, stored=11)
    assert city_store.progress()["b"].first_seq == 40
    assert stored_seqs(city_store, "b") == list(range(40, 51))


def test_refused_batches_store_nothing(city_store: CityStore) -> None:
    city_store.add_branch("a", name="A", address="x")
    with pytest.raises(CityError, match="no branch"):
        city_store.store_batch("z", batch("z", 1, 3))
    with pytest.raises(CityError, match="site"):
        city_store.store_batch("a", batch("b", 1, 3))
    with pytest.raises(CityError, match="beyond"):
        city_store.store_batch("a", batch("a", MAX_SEQ, MAX_SEQ + 1, first_available=MAX_SEQ))
    with pytest.raises(CityError, match="below its own"):
        city_store.store_batch("a", batch("a", 3, 5, first_available=4))
    nul = batch("a", 1, 2)
    poisoned = HistoryBatch.model_validate(
        {**nul.model_dump(), "events": [{**nul.events[0].model_dump(), "actor": "x\x00y"}]}
    )
    with pytest.raises(CityError, match="NUL"):
        city_store.store_batch("a", poisoned)
    assert city_store.progress()["a"].seq == 0
    assert stored_seqs(city_store, "a") == []


def test_lag_is_received_at_less_at(city_store: CityStore) -> None:
    later = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    store = CityStore(city_store.url, clock=lambda: later)
    try:
        store.add_branch("a", name="A", address="x")
        store.store_batch("a", batch("a", 1, 2))
        lag = store.lag(T0)["a"]
    finally:
        store.close()
    assert lag.events == 2
    assert lag.max_s == (later - T0).total_seconds() - 1
    assert lag.last_received_at == later


def test_users_have_roles_per_branch_and_argon2_passwords(city_store: CityStore) -> None:
    city_store.add_branch("a", name="A", address="x")
    city_store.add_user("admin", "long enough password", city_admin=True)
    city_store.add_user("eva", "another long one", roles={"a": "viewer"})
    eva = city_store.authenticate("eva", "another long one")
    assert eva is not None
    assert (eva.role_at("a"), eva.role_at("b")) == ("viewer", None)
    assert city_store.authenticate("eva", "wrong password") is None
    assert city_store.authenticate("nobody", "another long one") is None
    admin = city_store.user("admin")
    assert admin is not None
    assert admin.role_at("anything") == "manager"
    with pytest.raises(CityError, match="no branch"):
        city_store.add_user("ivan", "long enough password", roles={"zzz": "manager"})
    with pytest.raises(CityError, match="at least"):
        city_store.add_user("ivan", "short")
    assert [u.username for u in city_store.users()] == ["admin", "eva"]


def test_a_hash_with_old_parameters_is_replaced_at_sign_in(
    city_store: CityStore, cheap_password_hashes: PasswordHasher
) -> None:
    city_store.add_user("eva", "another long one")
    old = older_hasher(cheap_password_hashes).hash("another long one")
    with city_store.db.begin() as conn:
        conn.execute(text("UPDATE city_users SET password_hash = :h"), {"h": old})
    assert city_store.authenticate("eva", "wrong password") is None
    assert stored_hash(city_store) == old  # a wrong password changes nothing
    assert city_store.authenticate("eva", "another long one") is not None
    fresh = stored_hash(city_store)
    assert fresh != old
    assert not cheap_password_hashes.check_needs_rehash(fresh)
    assert city_store.authenticate("eva", "another long one") is not None
    assert stored_hash(city_store) == fresh  # once only


def test_a_new_password_gives_a_new_session_key(city_store: CityStore) -> None:
    first = city_store.add_user("eva", "another long one")
    assert city_store.user("eva") == first
    assert first.session_key
    again = city_store.add_user("eva", "another long one")
    assert again.session_key != first.session_key
    city_store.end_sessions("eva")
    ended = city_store.user("eva")
    assert ended is not None
    assert ended.session_key not in (first.session_key, again.session_key)


def stored_hash(city_store: CityStore) -> str:
    with city_store.db.connect() as conn:
        return str(conn.execute(text("SELECT password_hash FROM city_users")).scalar_one())


def test_the_catalogue_version_grows_with_every_change(city_store: CityStore) -> None:
    assert city_store.catalogue() is None
    service = CatalogueService(code="a", prefix="A", names={"sk": "Doklady", "en": "Documents"})
    first = city_store.set_catalogue([service])
    assert first.version == 1
    other = service.model_copy(update={"code": "b", "prefix": "B"})
    second = city_store.set_catalogue([service, other])
    assert second.version == 2
    stored = city_store.catalogue()
    assert stored is not None
    assert [s.code for s in stored.services] == ["a", "b"]
    assert stored.version == 2
    with pytest.raises(CityError, match="twice"):
        city_store.set_catalogue([service, service])
