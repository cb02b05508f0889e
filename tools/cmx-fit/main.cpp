// cmx-fit: fit XRF spectra into net peak intensities (see cmx-fit(1)).
#include "core/run_tool.hpp"
#include "core/error.hpp"
#include "xrf/cmx_fit.hpp"

int main(int argc, char** argv) {
  opx::Tool tool("cmx-fit",
                 "Fit energy-dispersive XRF spectra: net peak areas and count rates with uncertainties",
                 "Examples:\n"
                 "  cmx-fit -c nmc-coin-cell-cu-tube spectrum.mca\n"
                 "  cmx-fit -c nmc-coin-cell-cu-tube profile.h5 -o profile.fit.h5\n"
                 "  cmx-fit -c my.json 'map.h5:/entry/data/counts' --live-time '0.25 s' -o map.fit.h5\n"
                 "  cmx-fit --identify unknown.spx\n"
                 "  cmx-fit --import-pymca setup.cfg -o setup.json\n"
                 "See cmx-fit(1) and opx(7).");
  CLI::App& app = tool.app();
  opx::xrf::CmxFitOptions fit;
  opx::xrf::IdentifyOptions identify;
  bool do_identify = false;
  std::string pymca_cfg;
  bool ignore_file_calibration = false;

  app.add_option("inputs", fit.inputs, "Spectrum files (.mca, .spx, .csv), globs, or one stack FILE.h5[:/dataset]");
  app.add_option("-c,--config", fit.config, "Fit configuration JSON, or the name of a ready one (config/)");
  app.add_option("-o,--output", fit.output, "Result HDF5 file (NeXus), with a manifest beside it");
  app.add_option("--live-time", fit.live_time, "Live time of every spectrum, e.g. '30 s' (overrides the files)");
  app.add_option("--live-time-dataset", fit.live_time_dataset, "Per-spectrum live times: FILE.h5:/path (seconds)");
  app.add_option("--engine", fit.engine, "auto, linear (stacks: shared nonlinear parameters), nonlinear (every spectrum)")
      ->check(CLI::IsMember({"auto", "linear", "nonlinear"}))
      ->capture_default_str();
  app.add_option("--weights", fit.weights, "Linear engine weights: sum (Poisson, from the sum spectrum) or none")
      ->check(CLI::IsMember({"sum", "none"}))
      ->capture_default_str();
  app.add_option("--format", fit.format, "Single spectra on stdout: table or json")
      ->check(CLI::IsMember({"auto", "table", "json"}))
      ->capture_default_str();
  app.add_flag("--save-model", fit.save_model, "Also write the model, background and residual of every spectrum");
  app.add_flag("--ignore-file-calibration", ignore_file_calibration,
               "Start from the configuration's energy calibration even when a file has its own");
  app.add_option("--chunk", fit.chunk, "Spectra per chunk when streaming a stack (bounds memory)")
      ->check(CLI::Range(1, 1 << 24))
      ->capture_default_str();
  app.add_option("--threads", fit.threads, "Threads (default: all cores)")->check(CLI::Range(0, 1024));
  app.add_flag("--identify", do_identify, "Find peaks in one spectrum and propose elements and lines");
  app.add_option("--min-significance", identify.min_significance, "--identify: smallest peak significance (sigma)")
      ->capture_default_str();
  app.add_option("--import-pymca", pymca_cfg, "Convert a PyMca fit configuration (.cfg) to opx JSON (-o or stdout)");

  return tool.run(argc, argv, [&] {
    if (!pymca_cfg.empty()) return opx::xrf::run_import_pymca(pymca_cfg, fit.output);
    if (do_identify) {
      if (fit.inputs.size() != 1)
        throw opx::usage_error("--identify", "", "give exactly one spectrum file");
      identify.input = fit.inputs.front();
      identify.config = fit.config;
      identify.format = fit.format == "json" ? "json" : "table";
      return opx::xrf::run_identify(identify);
    }
    fit.use_file_calibration = !ignore_file_calibration;
    return opx::xrf::run_cmx_fit(fit);
  });
}
