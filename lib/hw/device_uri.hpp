#pragma once
// Devices are named by URIs: DRIVER:CONNECTION[,key=value...], e.g.
//   dp5:/dev/ttyUSB0   gcs2:/dev/ttyS1,baud=115200   gsv3:sim,speed=100
// "sim" as the connection selects the driver's in-process emulator, reached
// through the loopback transport with the driver's real protocol code.
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace opx::hw {

struct DeviceUri {
  std::string driver;      // "dp5", lower case
  std::string connection;  // "/dev/ttyUSB0", "sim"
  std::map<std::string, std::string> options;
  std::string text;        // as given, for messages

  bool simulated() const { return connection == "sim"; }
  // An option's value, or nullopt.
  std::optional<std::string> option(const std::string& key) const;
  // A numeric option; throws usage error naming the URI when it is not a number.
  std::optional<long> integer_option(const std::string& key) const;
};

// Throws usage error (64) naming the text and what is wrong.
DeviceUri parse_device_uri(std::string_view text);

}  // namespace opx::hw
