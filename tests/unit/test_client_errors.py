"""How the typed client (and so the CLI) words a gateway's error on one line."""

from gateway.client import describe


def test_a_problem_without_its_field_in_the_message_is_led_by_where_it_is():
    detail = [{"loc": ["body", "workflow_id"], "msg": "Field required", "type": "missing"}]
    assert describe(detail) == "workflow_id: Field required"


def test_a_problem_that_names_its_field_is_said_as_it_is():
    detail = [
        {
            "loc": ["body", "STEPS_CONFIG", 0, "service_ur"],
            "msg": "STEPS_CONFIG[0].service_ur: unknown field; did you mean 'service_url'?",
            "type": "extra_forbidden",
        },
        {"loc": ["body", "STEPS_CONFIG", 1, "usid"], "msg": "Field required", "type": "missing"},
    ]
    assert describe(detail) == (
        "STEPS_CONFIG[0].service_ur: unknown field; did you mean 'service_url'?;"
        " STEPS_CONFIG.1.usid: Field required"
    )
    assert describe("run 'x' not found") == "run 'x' not found"
