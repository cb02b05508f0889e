// opx-ports: the serial ports of this machine and the instruments behind them (see opx-ports(1)).
#include "core/run_tool.hpp"
#include "hw/serial_ports.hpp"

int main(int argc, char** argv) {
  opx::Tool tool("opx-ports", "List serial ports with their USB ids, serial numbers and the likely opx driver",
                 "Examples:\n"
                 "  opx-ports\n"
                 "  opx-ports --format json\n"
                 "See opx-ports(1).");
  opx::hw::ListPortsOptions options;
  tool.app()
      .add_option("--format", options.format, "table or json")
      ->check(CLI::IsMember({"table", "json"}))
      ->capture_default_str();
  return tool.run(argc, argv, [&] { return opx::hw::run_list_ports(options); });
}
