#pragma once
// The serial ports attached to this machine, from libserialport: name, USB
// vendor and product id, description and serial number, so a user can tell
// which /dev/ttyUSBn is the MCA and which the stage controller.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace opx::hw {

struct PortInfo {
  std::string name;          // "/dev/ttyUSB0"
  std::string description;   // "X-123 Amptek" or the driver's text
  std::string transport;     // "usb", "native", "bluetooth"
  std::optional<int> usb_vid, usb_pid;
  std::string usb_manufacturer, usb_product, usb_serial;

  nlohmann::json to_json() const;
  // Driver that usually sits behind this USB id (e.g. "dp5" for 10C4:842A), or "".
  std::string likely_driver() const;
};

// Every port libserialport finds; an empty list is not an error.
std::vector<PortInfo> list_serial_ports();

// `opx-ports`: the list as a table or as JSON on stdout.
struct ListPortsOptions {
  std::string format = "table";  // table | json
};
int run_list_ports(const ListPortsOptions& options);

}  // namespace opx::hw
