"""The jobs REST API (DESIGN §3): shapes, isolation between users, 422s naming the
parameter, and the admin-only limits route."""
from __future__ import annotations

import pytest

from chalicelib import jobs
from tests.items import slot

JOB_FIELDS = {
    "id", "job_type", "status", "progress_pct", "progress_detail", "schedule_id",
    "result_ref", "error_msg", "created_at", "started_at", "completed_at",
}


@pytest.fixture
def admin(make_user):
    return make_user("admin@example.com")  # the first user is the admin


@pytest.fixture
def carol(admin, make_user):
    return make_user("carol@example.com")


@pytest.fixture
def dave(admin, make_user):
    return make_user("dave@example.com")


def submit(api, **kw):
    return jobs.submit("benchmark", api.id, {"schedule_id": "s1"}, schedule_id="s1", **kw)


def test_list_jobs_newest_first_with_the_design_shape(events, clock, carol, dave):
    first = submit(carol)
    clock.advance(seconds=1)
    second = submit(carol)
    submit(dave)
    status, data = carol.get("/api/jobs")
    assert status == 200
    assert [j["id"] for j in data["jobs"]] == [second.job_id, first.job_id]
    assert set(data["jobs"][0]) == JOB_FIELDS
    assert data["jobs"][0]["status"] == "pending" and data["jobs"][0]["schedule_id"] == "s1"


def test_list_jobs_filters_by_status_and_limits(events, clock, carol):
    ids = []
    for _ in range(3):
        clock.advance(seconds=1)
        ids.append(submit(carol).job_id)
    jobs.start(ids[0])
    status, data = carol.get("/api/jobs?status=running,queued&limit=20")
    assert status == 200 and [j["id"] for j in data["jobs"]] == [ids[0]]
    status, data = carol.get("/api/jobs?status=pending&limit=1")
    assert [j["id"] for j in data["jobs"]] == [ids[2]]


@pytest.mark.parametrize(
    "query, param",
    [
        ("status=runing", "status"),
        ("status=running,nope", "status"),
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
    ],
)
def test_bad_list_parameters_are_422_naming_them(events, carol, query, param):
    status, data = carol.get(f"/api/jobs?{query}")
    assert status == 422
    assert param in data["error"] and data["detail"][0]["field"] == param


def test_get_job_answers_the_job_and_404_for_another_users(events, carol, dave):
    job = submit(carol)
    status, data = carol.get(f"/api/jobs/{job.job_id}")
    assert status == 200 and data["id"] == job.job_id and set(data) == JOB_FIELDS
    status, data = dave.get(f"/api/jobs/{job.job_id}")
    assert status == 404 and data["error"] == "Job not found"
    assert carol.get("/api/jobs/no-such-job")[0] == 404


def test_cancel_answers_ok_and_404_for_another_users_job(events, carol, dave):
    job = submit(carol)
    assert dave.post(f"/api/jobs/{job.job_id}/cancel")[0] == 404
    assert jobs.get_job(job.job_id, carol.id).status == "pending"
    assert carol.post(f"/api/jobs/{job.job_id}/cancel") == (200, {"status": "ok"})
    assert jobs.get_job(job.job_id, carol.id).status == "cancelled"
    status, data = carol.post(f"/api/jobs/{job.job_id}/cancel")
    assert status == 409 and "cancelled" in data["error"]


def test_cancel_of_a_running_job_asks_the_runner(events, carol):
    job = submit(carol)
    jobs.start(job.job_id)
    assert carol.post(f"/api/jobs/{job.job_id}/cancel") == (200, {"status": "ok"})
    assert jobs.progress(job.job_id, 10, "x") is True


def test_jobs_routes_need_a_token(events, anonymous):
    assert anonymous.get("/api/jobs")[0] == 401


def test_an_admin_sets_a_users_limit(events, admin, carol):
    status, data = admin.put(f"/api/admin/users/{carol.id}/limits", {"max_concurrent": 3})
    assert status == 200 and data == {"status": "ok", "user_id": carol.id, "max_concurrent": 3}
    assert slot(carol.id)["limit"] == 3


def test_a_non_admin_is_403_even_with_a_bad_body(events, admin, carol):
    assert carol.put(f"/api/admin/users/{carol.id}/limits", {"max_concurrent": 20})[0] == 403
    assert carol.put(f"/api/admin/users/{carol.id}/limits", {"max_concurrent": 99})[0] == 403
    assert slot(carol.id) == {}


@pytest.mark.parametrize("value", [0, 21, "3", None, 2.5])
def test_limits_outside_1_to_20_are_422_naming_the_field(events, admin, carol, value):
    status, data = admin.put(f"/api/admin/users/{carol.id}/limits", {"max_concurrent": value})
    assert status == 422 and "max_concurrent" in data["error"]


def test_limits_of_an_unknown_user_are_404(events, admin):
    assert admin.put("/api/admin/users/nobody/limits", {"max_concurrent": 2})[0] == 404
