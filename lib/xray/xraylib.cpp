#include "xray/xraylib.hpp"

#include <xraylib/xraylib.h>

#include <cctype>
#include <cmath>
#include <memory>
#include <mutex>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::xray {
namespace {

struct LineCode {
  const char* name;
  int code;
};
constexpr LineCode kLineCodes[] = {
#include "xray/line_codes.inc"
};

// xraylib keeps a global error only through the out-parameter; wrap it.
class XrlError {
 public:
  ~XrlError() {
    if (err_) xrl_error_free(err_);
  }
  xrl_error** ptr() { return &err_; }
  bool failed() const { return err_ != nullptr; }
  std::string message() const { return err_ && err_->message ? err_->message : "unknown xraylib error"; }

 private:
  xrl_error* err_ = nullptr;
};

void init_once() {
  static std::once_flag flag;
  std::call_once(flag, [] { XRayInit(); });
}

struct CompoundDeleter {
  void operator()(compoundData* cd) const { FreeCompoundData(cd); }
};

}  // namespace

int atomic_number(std::string_view symbol) {
  init_once();
  std::string s(symbol);
  if (s.size() >= 1) {
    s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    for (std::size_t i = 1; i < s.size(); ++i)
      s[i] = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i])));
  }
  XrlError e;
  int z = SymbolToAtomicNumber(s.c_str(), e.ptr());
  if (e.failed() || z <= 0)
    throw config_error("unknown element", std::string(symbol), "not a chemical element symbol");
  return z;
}

std::string element_symbol(int Z) {
  init_once();
  XrlError e;
  char* s = AtomicNumberToSymbol(Z, e.ptr());
  if (e.failed() || !s) throw config_error("unknown element", fmt::format("Z={}", Z), e.message());
  std::string out(s);
  xrlFree(s);
  return out;
}

double atomic_weight(int Z) {
  XrlError e;
  double w = AtomicWeight(Z, e.ptr());
  if (e.failed()) throw config_error("no atomic weight", fmt::format("Z={}", Z), e.message());
  return w;
}

double element_density(int Z) {
  XrlError e;
  double d = ElementDensity(Z, e.ptr());
  if (e.failed()) throw config_error("no density", fmt::format("Z={}", Z), e.message());
  return d;
}

const char* family_name(Family f) {
  switch (f) {
    case Family::K: return "K";
    case Family::L: return "L";
    case Family::M: return "M";
  }
  return "?";
}

Family parse_family(std::string_view t) {
  if (!t.empty()) {
    char c = static_cast<char>(std::toupper(static_cast<unsigned char>(t[0])));
    if (c == 'K') return Family::K;
    if (c == 'L') return Family::L;
    if (c == 'M') return Family::M;
  }
  throw config_error("unknown line family", std::string(t), "use K, L or M");
}

int initial_shell(int code) {
  // xraylib codes: K lines -1..-29, L1 -30.., L2, L3, then M1..M5.
  for (const auto& lc : kLineCodes) {
    if (lc.code != code) continue;
    std::string n(lc.name);
    if (n[0] == 'K') return K_SHELL;
    int sub = n[1] - '0';
    if (n[0] == 'L') return L1_SHELL + sub - 1;
    if (n[0] == 'M') return M1_SHELL + sub - 1;
  }
  return -1;
}

std::vector<Line> family_lines(int Z, Family f) {
  init_once();
  std::vector<Line> out;
  char want = family_name(f)[0];
  for (const auto& lc : kLineCodes) {
    if (lc.name[0] != want) continue;
    XrlError e1, e2;
    double energy = LineEnergy(Z, lc.code, e1.ptr());
    double rate = RadRate(Z, lc.code, e2.ptr());
    if (e1.failed() || e2.failed() || energy <= 0 || rate <= 0) continue;
    out.push_back({lc.name, lc.code, energy});
  }
  return out;
}

double edge_energy_keV(int Z, int shell) {
  XrlError e;
  double v = EdgeEnergy(Z, shell, e.ptr());
  return e.failed() ? 0.0 : v;
}

double fluorescence_yield(int Z, int shell) {
  XrlError e;
  double v = FluorYield(Z, shell, e.ptr());
  return e.failed() ? 0.0 : v;
}

double radiative_rate(int Z, int line_code) {
  XrlError e;
  double v = RadRate(Z, line_code, e.ptr());
  return e.failed() ? 0.0 : v;
}

double line_cross_section(int Z, int line_code, double excitation_keV) {
  XrlError e;
  double v = CS_FluorLine_Kissel_Cascade(Z, line_code, excitation_keV, e.ptr());
  return e.failed() ? 0.0 : v;
}

namespace {
// Element symbol or compound formula -> mass-weighted sum over elements.
template <typename F>
double per_material(std::string_view material, double energy_keV, F&& per_element) {
  init_once();
  std::string m(material);
  XrlError e;
  std::unique_ptr<compoundData, CompoundDeleter> cd(CompoundParser(m.c_str(), e.ptr()));
  if (e.failed() || !cd)
    throw config_error("unknown material", m, "not an element or chemical formula xraylib can parse");
  double sum = 0;
  for (int i = 0; i < cd->nElements; ++i)
    sum += cd->massFractions[i] * per_element(cd->Elements[i], energy_keV);
  return sum;
}
}  // namespace

double mass_attenuation(std::string_view material, double energy_keV) {
  return per_material(material, energy_keV, [](int Z, double E) {
    XrlError e;
    double v = CS_Total_Kissel(Z, E, e.ptr());
    if (e.failed()) throw config_error("no attenuation data", fmt::format("Z={} at {} keV", Z, E), e.message());
    return v;
  });
}

double mass_photoabsorption(std::string_view material, double energy_keV) {
  return per_material(material, energy_keV, [](int Z, double E) {
    XrlError e;
    double v = CS_Photo_Total(Z, E, e.ptr());
    if (e.failed()) throw config_error("no absorption data", fmt::format("Z={} at {} keV", Z, E), e.message());
    return v;
  });
}

double transmission(std::string_view material, double density, double thickness_cm, double energy_keV) {
  return std::exp(-mass_attenuation(material, energy_keV) * density * thickness_cm);
}

double default_density(std::string_view material) {
  init_once();
  std::string m(material);
  XrlError e;
  int z = SymbolToAtomicNumber(m.c_str(), e.ptr());
  if (!e.failed() && z > 0) return element_density(z);
  XrlError e2;
  compoundDataNIST* nist = GetCompoundDataNISTByName(m.c_str(), e2.ptr());
  if (!e2.failed() && nist) {
    double d = nist->density;
    FreeCompoundDataNIST(nist);
    return d;
  }
  throw config_error("no density", m, "give the density of this material explicitly");
}

double compton_energy_keV(double e0, double angle_deg) {
  XrlError e;
  double v = ComptonEnergy(e0, angle_deg * M_PI / 180.0, e.ptr());
  return e.failed() ? e0 : v;
}

void check_material(std::string_view material, std::string_view where) {
  init_once();
  std::string m(material);
  XrlError e;
  std::unique_ptr<compoundData, CompoundDeleter> cd(CompoundParser(m.c_str(), e.ptr()));
  if (e.failed() || !cd)
    throw config_error("unknown material", std::string(where),
                       fmt::format("'{}' is not an element or chemical formula", m));
}

}  // namespace opx::xray
