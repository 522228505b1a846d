"""How the simulator reaches an agent under test: one small module per wire protocol.

Every connector opens a :class:`~.base.AgentSession` per simulated conversation and turns what the agent
sends back into an :class:`~.base.AgentReply`. The runner never knows which protocol it is talking.
"""
