"""LED counter boards on an RS-485 bus: protocols, the bus, emulated boards, the driver.

Layers, from the wire up:

- :mod:`.protocols`: how a board's frames look, one module per protocol, found by name;
- :mod:`.bus`: a serial port (pyserial, with the kernel's RS-485 direction control where
  the port has it) or the simulated bus of :mod:`.emulator`, and :class:`~.bus.BoardBus`,
  which sends a command to an addressed board with bounded timeouts and retries;
- :mod:`.driver`: :class:`~.driver.LedBoards`, which keeps every board showing what it
  should (blinking a new number for a while), in its own thread, and reports boards that
  stop acknowledging.
"""
