#pragma once
// Single-spectrum files as energy-dispersive detectors and their software
// write them, read into one `Spectrum`, and written back for tests and
// simulated instruments:
//   - Amptek .mca  — the text format of the MCA-8000 / DP5 family (DppMCA,
//                    ADMCA): "<<PMCA SPECTRUM>>" header, optional
//                    "<<CALIBRATION>>" and "<<ROI>>", one count per line
//                    between "<<DATA>>" and "<<END>>", then the DP5
//                    configuration and DPP status blocks.
//   - Bruker .spx  — the XML "TRTSpectrum" document of Esprit / M4 Tornado:
//                    channel count and keV calibration in TRTSpectrumHeader,
//                    real and live time (ms) in TRTSpectrumHardwareHeader,
//                    tube settings in TRTXrfHeader, counts in <Channels>.
//   - CSV / TSV    — one column (counts) or several (channel and/or energy,
//                    counts), separated by commas, tabs, semicolons or
//                    blanks, with an optional header line and '#' comments.
//
// Readers are strict about the data and tolerant about everything else:
// any malformed count, time, calibration or structure is an opx::Error with
// exit code data_error (65) naming the file and the line (or XML element) and
// why; a missing or unreadable file is input_missing (66). A reader never
// returns a partial spectrum. Unknown header fields are kept in `metadata`.
#include <cstddef>
#include <filesystem>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace opx::io {

enum class SpectrumFormat { amptek_mca, bruker_spx, csv };

// "mca", "spx" or "csv": the short names used on command lines and in JSON.
std::string_view format_name(SpectrumFormat format);
// Accepts the short names and their common spellings ("amptek", "bruker",
// "tsv", "txt"); throws usage_error naming `what` otherwise.
SpectrumFormat parse_spectrum_format(std::string_view name, std::string_view what = "--format");

// One energy-dispersive spectrum.
struct Spectrum {
  static constexpr double not_recorded = std::numeric_limits<double>::quiet_NaN();

  // Counts per channel; index i is channel i, counted from 0 as Amptek and
  // Bruker do (a CSV channel column numbered from 1 is renumbered). Finite
  // and >= 0; usually whole numbers.
  std::vector<double> counts;

  // Acquisition times in seconds; NaN when the file does not record them.
  // A recorded live time may be 0 (e.g. a summed spectrum): whoever turns
  // counts into rates must check it is > 0.
  double live_time_s = not_recorded;
  double real_time_s = not_recorded;

  // Energy calibration, when the file has one:
  //   E(ch) = offset_keV + gain_keV_per_channel * ch + quadratic_keV * ch^2
  // quadratic_keV is in keV per channel^2, present only when the file's
  // calibration is quadratic (an Amptek calibration through 3 or more points,
  // a CSV energy column that is not linear in channel).
  std::optional<double> offset_keV, gain_keV_per_channel, quadratic_keV;

  // Where the spectrum came from (the file name as given), for messages.
  std::string source;

  // Everything else worth keeping, as a JSON object. Keys common to all
  // formats when the file records them:
  //   "format" ("mca"|"spx"|"csv"), "start_time" (ISO 8601, local time, no
  //   zone), "detector" (model), "detector_serial", "tube_voltage_kV",
  //   "tube_current_uA", "tube_anode" (element symbol), "description".
  // Format-specific blocks: mca "header", "calibration_points", "roi",
  // "configuration" (DP5 KEY -> value), "status" (DPP status); spx
  // "name", "hardware", "spectrum_header", "detector_header", "xrf"; csv
  // "columns" (header names), "comments" ("# key: value" lines).
  // Strings are UTF-8 (files in Latin-1 / Windows-1252 are converted).
  nlohmann::json metadata = nlohmann::json::object();

  std::size_t channel_count() const { return counts.size(); }
  bool has_calibration() const { return offset_keV.has_value() && gain_keV_per_channel.has_value(); }
  // Energy of (fractional) channel `channel`; throws internal_error when the
  // spectrum has no calibration (check has_calibration() first).
  double energy_keV(double channel) const;
};

// Reads one spectrum. `path` "-" reads standard input. Without `format`, the
// content decides when it is recognisable ("<<PMCA SPECTRUM>>" -> mca, an XML
// document -> spx), then the extension (.mca, .spx, .csv/.tsv/.txt/.dat),
// then CSV.
Spectrum read_spectrum(const std::filesystem::path& path, std::optional<SpectrumFormat> format = {});

// Parses a spectrum already in memory; `source` names it in messages.
Spectrum parse_spectrum(std::string_view content, std::string source,
                        std::optional<SpectrumFormat> format = {});

// The format read_spectrum would choose for this content and file name.
SpectrumFormat sniff_spectrum_format(std::string_view content, const std::filesystem::path& name);

// Writers. The text is what write_spectrum puts in the file.
//   Amptek .mca: counts, LIVE_TIME / REAL_TIME (when recorded), START_TIME,
//     SERIAL_NUMBER, a keV calibration as 2 (linear) or 3 (quadratic) points
//     that reproduce the coefficients, and the DP5 configuration / DPP status
//     blocks when metadata carries them. Amptek software expects whole
//     counts; other values are written as decimals.
//   CSV: '#' comment lines "key: value" (source, live_time_s, real_time_s and
//     the calibration coefficients at full precision, which the CSV reader
//     takes back), a header line, then channel,[energy_keV,]counts.
std::string format_mca(const Spectrum& spectrum);
std::string format_csv(const Spectrum& spectrum);

// Writes atomically (temporary name, renamed on success); "-" writes to
// standard output. Without `format`, the extension decides (.mca -> mca,
// anything else -> CSV). Writing .spx is not supported (usage_error).
void write_spectrum(const Spectrum& spectrum, const std::filesystem::path& path,
                    std::optional<SpectrumFormat> format = {});

}  // namespace opx::io
