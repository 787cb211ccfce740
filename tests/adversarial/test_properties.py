"""Property tests: argument validation and the peer's payload handling never crash on any input."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from blendbus import protocol as p
from blendbus.testing import make_server
from blendbus.testing import plugin as testing_plugin
from blendbus_addon.declarations import Declarations
from blendbus_addon.executor import Executor, PlainRuntime
from blendbus_addon.jobqueue import Job

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=20,
)
SERVER = make_server([("testing", testing_plugin)])


@settings(max_examples=300, deadline=None)
@given(tool=st.sampled_from(sorted(t.name for t in SERVER.tools.app_tools)), arguments=st.dictionaries(
    st.text(max_size=12), json_values, max_size=5))
def test_validation_answers_every_input_with_none_or_a_message(tool, arguments):
    verdict = SERVER.tools.validate(tool, arguments)
    assert verdict is None or (isinstance(verdict, str) and tool in verdict)


EXECUTOR = Executor(PlainRuntime({"allow_code_execution": False}), Declarations.of(SERVER.plugins))
EXECUTOR.set_commands([c.wire() for c in SERVER.plugins.commands.values()])


@settings(max_examples=300, deadline=None)
@given(payload=st.dictionaries(st.sampled_from(["message_type", "job_id", "command", "params", "script"]),
                               json_values | st.sampled_from(list(p.PAYLOAD_KINDS) + ["test_echo", "execute_code"]),
                               max_size=5))
def test_the_executor_answers_every_payload_with_a_reply(payload):
    reply = EXECUTOR.run(payload, Job("j-prop"))
    assert reply.status in (p.COMPLETED, p.FAILED)
    if reply.status == p.FAILED:
        assert reply.error
