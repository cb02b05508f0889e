// cmx-sim: simulated confocal micro-XRF depth scans of a virtual coin cell (see cmx-sim(1)).
#include "core/run_tool.hpp"
#include "sim/cmx_sim.hpp"

int main(int argc, char** argv) {
  opx::Tool tool("cmx-sim",
                 "Write a simulated confocal micro-XRF depth scan of a virtual NMC coin cell (NeXus, as cmx-acquire)",
                 "Examples:\n"
                 "  cmx-sim -o profile.h5\n"
                 "  cmx-sim -o aged.h5 --shift '12 um' --mn-anode 4 --seed 7\n"
                 "  cmx-sim -o big.h5 --points 4096 --step '0.2 um'\n"
                 "See cmx-sim(1).");
  CLI::App& app = tool.app();
  opx::sim::CmxSimOptions o;
  app.add_option("-o,--output", o.output, "Scan file to write (HDF5/NeXus)")->required();
  app.add_option("-c,--config", o.config, "Fit configuration giving the spectral response")->capture_default_str();
  app.add_option("--points", o.points, "Depth points")->capture_default_str();
  app.add_option("--start", o.start, "First depth")->capture_default_str();
  app.add_option("--step", o.step, "Depth step")->capture_default_str();
  app.add_option("--real-time", o.real_time, "Real time per spectrum")->capture_default_str();
  app.add_option("--shift", o.shift, "Displacement of the whole layer stack")->capture_default_str();
  app.add_option("--mn-anode", o.anode_mn_factor, "Mn in the anode relative to the fresh cell")->capture_default_str();
  app.add_option("--channels", o.channels, "MCA channels")->capture_default_str();
  app.add_option("--seed", o.seed, "Seed of the Poisson noise")->capture_default_str();
  bool no_noise = false;
  app.add_flag("--no-noise", no_noise, "Write the expected counts without Poisson noise");
  return tool.run(argc, argv, [&] {
    o.noise = !no_noise;
    return opx::sim::run_cmx_sim(o);
  });
}
