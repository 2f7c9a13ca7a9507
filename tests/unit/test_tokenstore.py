"""The token store: one account's refresh at a time across processes, the latest token read
under the lock, only that account's entry rewritten, and a product that owns its tokens."""

from __future__ import annotations

import json
import multiprocessing
import time

import pytest

from tap_cronofy.errors import AccountError
from tap_cronofy.tokenstore import FileTokenStore, StoredToken, TokenStoreError
from tests.unit.test_accounts import APP, ENTRIES, make

FRESH = 3600  # seconds: an expires_in Cronofy gives


def _bump(path: str, account_id: str, rounds: int) -> None:
    """In another process: ``rounds`` read-modify-writes of one entry's counter, each one
    under the account's lock, as a refresh is (read the latest, then write it back)."""
    store = FileTokenStore(path)
    for _ in range(rounds):
        with store.holding(account_id) as held:
            assert held.current is not None
            count = int(held.current.refresh_token.rsplit("-", 1)[1])
            time.sleep(0.001)  # widen the window a lost update needs
            held.save(StoredToken(f"at-{count + 1}", f"rt-{count + 1}"))


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_processes_side_by_side_lose_no_update_to_one_or_to_other_entries(tmp_path, suffix):
    path = tmp_path / f"accounts{suffix}"
    entries = [
        {"account_id": f"acc_{n}", "access_token": "at-0", "refresh_token": "rt-0"}
        for n in range(3)
    ]
    path.write_text(json.dumps(entries))  # JSON is YAML too
    context = multiprocessing.get_context("spawn")
    # Two processes on acc_0 (the same account), one each on acc_1 and acc_2 (the same file).
    jobs = [("acc_0", 25), ("acc_0", 25), ("acc_1", 20), ("acc_2", 15)]
    workers = [context.Process(target=_bump, args=(str(path), a, n)) for a, n in jobs]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    store = FileTokenStore(path)
    counts = {e.account_id: e.token.refresh_token for e in store.entries()}
    assert counts == {"acc_0": "rt-50", "acc_1": "rt-20", "acc_2": "rt-15"}


def answers(*token_answers: tuple[int, dict]) -> dict:
    return {"/oauth/token": list(token_answers), "/v1/userinfo": [(200, {"sub": "acc_a"})]}


def file_of(tmp_path, entries=ENTRIES):
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps(entries))
    return path


def test_a_token_another_process_refreshed_is_reused_with_no_request(tmp_path):
    path = file_of(tmp_path)
    first, _, _ = make(
        {"accounts_file": str(path), **APP},
        answers((200, {"access_token": "at-new", "refresh_token": "rt-2", "expires_in": FRESH})),
    )
    second, client_2, _ = make({"accounts_file": str(path), **APP}, answers((500, {})))
    first.userinfo("acc_a")
    second.userinfo("acc_a")
    assert client_2.sent == [("/v1/userinfo", "at-new")], "no token request: the store had one"
    entry = json.loads(path.read_text())[0]
    assert entry["refresh_token"] == "rt-2" and entry["access_token_expires_at"].endswith("Z")


def test_a_refresh_spends_the_latest_refresh_token_not_the_one_read_at_start(tmp_path):
    path = file_of(tmp_path)
    # Both processes start from rt-a; the first one's refresh rotates it (no expiry known).
    first, _, _ = make(
        {"accounts_file": str(path), **APP},
        answers((200, {"access_token": "at-1", "refresh_token": "rt-2"})),
    )
    second, client_2, _ = make(
        {"accounts_file": str(path), **APP},
        answers((200, {"access_token": "at-2", "refresh_token": "rt-3"})),
    )
    first.userinfo("acc_a")
    second.userinfo("acc_a")
    assert [b["refresh_token"] for b in client_2.bodies] == ["rt-2"]
    assert json.loads(path.read_text())[0]["refresh_token"] == "rt-3"


def test_invalid_grant_after_an_outside_rotation_rereads_and_retries_once(tmp_path):
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), **APP},
        answers(
            (400, {"error": "invalid_grant"}),
            (200, {"access_token": "at-9", "refresh_token": "rt-9"}),
        ),
    )

    def rotate_outside(body: dict, original=client.token_request):
        reply = original(body)
        if len(client.bodies) == 1:  # the product rotated rt-a while the tap asked with it
            path.write_text(json.dumps([{**ENTRIES[0], "refresh_token": "rt-product"}]))
        return reply

    client.token_request = rotate_outside  # type: ignore[method-assign]
    assert accounts.userinfo("acc_a") == {"sub": "acc_a"}
    assert [b["refresh_token"] for b in client.bodies] == ["rt-a", "rt-product"]


def test_invalid_grant_with_nothing_newer_fails_the_account_after_one_request(tmp_path):
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), **APP}, answers((400, {"error": "invalid_grant"}))
    )
    with pytest.raises(AccountError, match="must be re-authorised"):
        accounts.userinfo("acc_a")
    assert len(client.bodies) == 1


def test_the_product_owns_the_tokens_a_401_rereads_the_store_once(tmp_path):
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), "token_owner": "product", **APP},
        {"/v1/userinfo": [(401, {}), (200, {"sub": "acc_a"})], "/oauth/token": [(500, {})]},
    )
    path.write_text(json.dumps([{**ENTRIES[0], "access_token": "at-by-product"}, ENTRIES[1]]))
    assert accounts.userinfo("acc_a") == {"sub": "acc_a"}
    assert client.sent == [("/v1/userinfo", "token-a"), ("/v1/userinfo", "at-by-product")]
    assert json.loads(path.read_text())[0]["access_token"] == "at-by-product", "never written"


def test_the_product_owns_the_tokens_and_the_store_has_nothing_newer(tmp_path):
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), "token_owner": "product", **APP},
        {"/v1/userinfo": [(401, {})], "/oauth/token": [(500, {})]},
    )
    with pytest.raises(AccountError, match="kept by your product"):
        accounts.userinfo("acc_a")
    assert "/oauth/token" not in [p for p, _ in client.sent], "the tap never refreshes"


def test_an_unreadable_store_fails_the_account_and_names_no_token(tmp_path):
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), **APP}, answers((200, {"access_token": "x"}))
    )
    path.write_text('[{"account_id": "acc_a", "refresh_token": "rt-secret-value" ')
    with pytest.raises(AccountError) as caught:
        accounts.userinfo("acc_a")
    assert "cannot be read" in str(caught.value) and "rt-secret" not in str(caught.value)
    assert client.sent == []


def test_store_read_errors_quote_nothing_of_the_file(tmp_path):
    path = tmp_path / "accounts.yaml"
    path.write_text("accounts:\n  - account_id: acc_a\n     refresh_token: rt-secret-value\n")
    with pytest.raises(TokenStoreError) as caught:
        FileTokenStore(path).entries()
    assert "rt-secret" not in str(caught.value) and caught.value.__cause__ is None


def test_a_token_cronofy_refused_is_never_adopted_from_the_store(tmp_path):
    """The store's access token looks fresh (its expiry is ahead) but Cronofy refused it,
    and its refresh token was rotated away: the account fails, it does not loop on it."""
    expires = "2999-01-01T00:00:00Z"
    path = file_of(tmp_path, [{**ENTRIES[0], "access_token_expires_at": expires}])
    accounts, client, _ = make(
        {"accounts_file": str(path), **APP},
        {
            "/v1/userinfo": [(401, {}), (200, {"sub": "acc_a"})],
            "/oauth/token": [(400, {"error": "invalid_grant"})],
        },
    )
    with pytest.raises(AccountError, match="invalid_grant"):
        accounts.userinfo("acc_a")
    assert [p for p, _ in client.sent] == ["/v1/userinfo", "/oauth/token"]


def test_a_rotation_the_store_could_not_keep_is_not_overwritten_by_the_stale_one(tmp_path):
    """Saving is off: Cronofy rotated rt-a to rt-2 in this run, the file still says rt-a.
    The next refresh spends rt-2 (the one Cronofy accepts), not the file's rt-a."""
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), "save_rotated_refresh_tokens": False, **APP},
        {
            "/oauth/token": [
                (200, {"access_token": "at-1", "refresh_token": "rt-2", "expires_in": FRESH}),
                (200, {"access_token": "at-2", "refresh_token": "rt-3", "expires_in": FRESH}),
            ],
        },
    )
    credential = accounts.credential("acc_a")
    assert credential.bearer(client) == "at-1"  # the first refresh: rt-a -> rt-2
    credential._expires_at = 0.0  # an hour later in the run: at-1 is due for a refresh
    assert credential.bearer(client) == "at-2"
    assert [b["refresh_token"] for b in client.bodies] == ["rt-a", "rt-2"]


def test_a_read_only_directory_is_fine_when_nothing_is_written(tmp_path):
    folder = tmp_path / "secrets"
    folder.mkdir()
    path = file_of(folder)
    folder.chmod(0o555)  # a mounted Secret: no lock file can be made
    try:
        accounts, _, _ = make(
            {"accounts_file": str(path), "save_rotated_refresh_tokens": False, **APP},
            answers((200, {"access_token": "at-1"})),
        )
        assert accounts.userinfo("acc_a") == {"sub": "acc_a"}
    finally:
        folder.chmod(0o755)


def test_the_product_owned_token_is_read_again_on_each_401_a_few_times_a_run(tmp_path):
    path = file_of(tmp_path)
    accounts, client, _ = make(
        {"accounts_file": str(path), "token_owner": "product", **APP},
        {"/v1/userinfo": [(200, {"sub": "acc_a"})], "/oauth/token": [(500, {})]},
    )
    credential = accounts.credential("acc_a")
    for n in range(1, 4):  # the product refreshes during a long run; each 401 reads again
        refused = credential.bearer(client)
        path.write_text(json.dumps([{**ENTRIES[0], "access_token": f"at-product-{n}"}]))
        credential.rejected(refused, client)
        assert credential.bearer(client) == f"at-product-{n}"
    path.write_text(json.dumps([{**ENTRIES[0], "access_token": "at-product-4"}]))
    with pytest.raises(AccountError, match="kept by your product"):
        credential.rejected("at-product-3", client)  # a fourth: the product is not keeping up
