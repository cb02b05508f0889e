#include "hw/serial_ports.hpp"

#include <libserialport.h>

#include <cstdio>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::hw {
namespace {

std::string text_or_empty(const char* s) { return s ? std::string(s) : std::string(); }

const char* transport_name(sp_transport t) {
  switch (t) {
    case SP_TRANSPORT_NATIVE: return "native";
    case SP_TRANSPORT_USB: return "usb";
    case SP_TRANSPORT_BLUETOOTH: return "bluetooth";
  }
  return "unknown";
}

}  // namespace

nlohmann::json PortInfo::to_json() const {
  nlohmann::json j = {{"name", name}, {"description", description}, {"transport", transport}};
  if (usb_vid && usb_pid) {
    j["usb_vid"] = fmt::format("{:04x}", *usb_vid);
    j["usb_pid"] = fmt::format("{:04x}", *usb_pid);
    j["usb_manufacturer"] = usb_manufacturer;
    j["usb_product"] = usb_product;
    j["usb_serial"] = usb_serial;
  }
  std::string d = likely_driver();
  if (!d.empty()) j["likely_driver"] = d;
  return j;
}

std::string PortInfo::likely_driver() const {
  if (!usb_vid || !usb_pid) return "";
  // Amptek X-123/DP5 on USB (Silicon Labs vendor id, Amptek product id).
  if (*usb_vid == 0x10C4 && *usb_pid == 0x842A) return "dp5";
  // PI controllers (C-863, C-884, E-873) present PI's vendor id 0x1A72.
  if (*usb_vid == 0x1A72) return "gcs2";
  return "";
}

std::vector<PortInfo> list_serial_ports() {
  sp_port** ports = nullptr;
  if (sp_list_ports(&ports) != SP_OK) {
    char* msg = sp_last_error_message();
    std::string why = text_or_empty(msg);
    sp_free_error_message(msg);
    throw Error(ExitCode::unavailable, "cannot list serial ports", "libserialport", why);
  }
  std::vector<PortInfo> out;
  for (int i = 0; ports[i]; ++i) {
    PortInfo p;
    p.name = text_or_empty(sp_get_port_name(ports[i]));
    p.description = text_or_empty(sp_get_port_description(ports[i]));
    sp_transport t = sp_get_port_transport(ports[i]);
    p.transport = transport_name(t);
    if (t == SP_TRANSPORT_USB) {
      int vid = 0, pid = 0;
      if (sp_get_port_usb_vid_pid(ports[i], &vid, &pid) == SP_OK) {
        p.usb_vid = vid;
        p.usb_pid = pid;
      }
      p.usb_manufacturer = text_or_empty(sp_get_port_usb_manufacturer(ports[i]));
      p.usb_product = text_or_empty(sp_get_port_usb_product(ports[i]));
      p.usb_serial = text_or_empty(sp_get_port_usb_serial(ports[i]));
    }
    out.push_back(std::move(p));
  }
  sp_free_port_list(ports);
  return out;
}

int run_list_ports(const ListPortsOptions& options) {
  if (options.format != "table" && options.format != "json")
    throw usage_error("invalid --format", options.format, "use table or json");
  auto ports = list_serial_ports();
  if (options.format == "json") {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : ports) list.push_back(p.to_json());
    std::string s = list.dump() + "\n";
    std::fputs(s.c_str(), stdout);
    return 0;
  }
  std::fputs(fmt::format("{:<24} {:<10} {:<10} {:<14} {:<8} {}\n", "port", "transport", "usb id", "serial",
                         "driver", "description")
                 .c_str(),
             stdout);
  for (const auto& p : ports) {
    std::string id = p.usb_vid ? fmt::format("{:04x}:{:04x}", *p.usb_vid, *p.usb_pid) : "-";
    std::fputs(fmt::format("{:<24} {:<10} {:<10} {:<14} {:<8} {}\n", p.name, p.transport, id,
                           p.usb_serial.empty() ? "-" : p.usb_serial,
                           p.likely_driver().empty() ? "-" : p.likely_driver(), p.description)
                   .c_str(),
               stdout);
  }
  return 0;
}

}  // namespace opx::hw
