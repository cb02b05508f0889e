#pragma once
// The exciting beam: an X-ray tube (anode, high voltage, exit window) or a
// monochromatic beam. opx needs it for two things in spectrum fitting:
//  - the relative intensities of an element's lines within a family, which
//    for L and M depend on how each subshell is ionized (K lines do not);
//  - the characteristic lines of the source, which the sample scatters
//    elastically (Rayleigh) and inelastically (Compton) into the spectrum.
#include <string>
#include <vector>

#include "xray/detector.hpp"

namespace opx::xray {

struct SourceLine {
  double energy_keV;
  double relative_intensity;   // within the source's characteristic lines, sum 1
  std::string label;           // "Cu KL3"
};

struct Excitation {
  enum class Kind { tube, monochromatic };
  Kind kind = Kind::tube;
  double energy_keV = 0;          // monochromatic
  std::string anode = "Cu";       // tube
  double voltage_kV = 50;
  std::vector<Layer> tube_window{{"Be", 1.848, 100}};

  // The excitation spectrum on an energy grid (photons per bin, sum 1):
  // Kramers' continuum (E0/E - 1) filtered by the tube window, plus the
  // anode's characteristic lines (Green-Cosslett ratio is not modelled: the
  // lines carry `line_fraction` of all photons). For a monochromatic beam,
  // one bin.
  struct Bin { double energy_keV, weight; };
  std::vector<Bin> spectrum(int bins = 120, double line_fraction = 0.3) const;

  // Characteristic lines of the source that appear as scatter peaks. For a
  // tube: the anode's K lines below the voltage (and L lines above 1 keV for
  // heavy anodes such as Rh, W, Mo), weighted by rate and window transmission.
  std::vector<SourceLine> source_lines(double min_relative = 1e-3) const;

  // A one-line description for manifests and messages.
  std::string describe() const;
};

}  // namespace opx::xray
