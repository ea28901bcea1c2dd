// Reading golden GDN-2 case files and checking ops against them (used by `gdn2 ops check` and the tests).
#include "gdn2/ops/gdn2_golden.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "gdn2/safetensors.h"
#include "ops/gdn2_problem.h"

namespace gdn2 {

namespace {

const char* const kExpectedFields[] = {"o", "ht", "dq", "dk", "dv", "dg", "db", "dw", "dh0"};

Tensor field(const SafetensorsFile& f, const std::string& name, const std::string& key, bool required) {
  const std::string full = name + "." + key;
  if (!f.contains(full)) {
    GDN2_CHECK(!required, FormatError, f.path(), ": case '", name, "' has no tensor '", full, "'");
    return Tensor();
  }
  Tensor t = f.get(full);
  if (dtype_is_float(t.dtype()))
    GDN2_CHECK(all_finite(t), FormatError, f.path(), ": tensor '", full, "' has NaN or infinite values");
  return t;
}

double parse_scale(const std::string& text, const std::string& where) {
  char* end = nullptr;
  const double s = std::strtod(text.c_str(), &end);
  GDN2_CHECK(end != text.c_str() && *end == '\0' && s > 0 && s < 1e6, FormatError, where, ": bad scale '", text, "'");
  return s;
}

}  // namespace

std::vector<Gdn2GoldenCase> gdn2_golden_read(const std::string& path) {
  const SafetensorsFile f = SafetensorsFile::open(path);
  std::set<std::string> names;
  for (const std::string& n : f.names())
    if (n.size() > 2 && n.compare(n.size() - 2, 2, ".q") == 0) names.insert(n.substr(0, n.size() - 2));
  GDN2_CHECK(!names.empty(), FormatError, path, ": no case found (expected tensors named '<case>.q', '<case>.k', ...)");
  std::vector<Gdn2GoldenCase> cases;
  for (const std::string& name : names) {
    Gdn2GoldenCase c;
    c.name = name;
    c.in.q = field(f, name, "q", true);
    c.in.k = field(f, name, "k", true);
    c.in.v = field(f, name, "v", true);
    c.in.g_log = field(f, name, "g", true);
    c.in.b = field(f, name, "b", false);
    c.in.w = field(f, name, "w", false);
    c.in.h0 = field(f, name, "h0", false);
    c.in.cu_seqlens = field(f, name, "cu_seqlens", false);
    c.d_o = field(f, name, "do", false);
    c.dht = field(f, name, "dht", false);
    const auto& meta = f.metadata();
    if (auto it = meta.find(name + ".scale"); it != meta.end())
      c.opt.scale = parse_scale(it->second, path + " metadata " + name + ".scale");
    else if (auto it2 = meta.find("scale"); it2 != meta.end())
      c.opt.scale = parse_scale(it2->second, path + " metadata scale");
    for (const char* key : kExpectedFields) {
      Tensor t = field(f, name, key, false);
      if (t.defined()) c.expected.emplace_back(key, t);
    }
    // Validate shapes now, so that a malformed case is reported as a file error naming the case.
    try {
      const Gdn2Problem p = gdn2_problem(c.in, c.opt, "golden case");
      if (c.d_o.defined()) gdn2_check_cotangents(p, c.d_o, c.dht, "golden case");
    } catch (const Error& e) {
      GDN2_THROW(FormatError, path, ": case '", name, "': ", e.what());
    }
    cases.push_back(std::move(c));
  }
  return cases;
}

Gdn2CheckResult gdn2_golden_check(const Gdn2GoldenCase& c, Gdn2CheckOp op, Backend backend, DType compute,
                                  int chunk_size, double budget) {
  backend_require(backend);
  GDN2_CHECK(backend == Backend::cpu || op != Gdn2CheckOp::ref, UnsupportedError,
             "the fp64 oracle runs on the CPU only (--op ref with --backend cpu)");
  Gdn2Options opt = c.opt;
  opt.compute = compute;
  opt.chunk_size = chunk_size;
  const Gdn2Problem p = gdn2_problem(c.in, opt, "ops check");
  Gdn2CheckResult r;
  r.name = c.name;
  r.mode = gdn2_gate_mode_name(c.in);
  r.shape = "B" + std::to_string(p.B) + " T" + std::to_string(p.T) + " H" + std::to_string(p.H) + "/" +
            std::to_string(p.HV) + " K" + std::to_string(p.K) + " V" + std::to_string(p.V) +
            (c.in.cu_seqlens.defined() ? " N" + std::to_string(p.N) : "") + (c.in.h0.defined() ? " h0" : "");
  Gdn2Outputs out;
  Gdn2Grads grads;
  const bool backward = c.d_o.defined() && op != Gdn2CheckOp::recurrent;
  const Device device = backend == Backend::cuda ? Device::cuda : Device::cpu;
  const Gdn2Inputs in = gdn2_inputs_to(c.in, device);
  auto on_device = [device](const Tensor& t) { return t.defined() ? t.to(device) : t; };
  switch (op) {
    case Gdn2CheckOp::chunk:
      out = gdn2_chunk_fwd(in, opt);
      if (backward) grads = gdn2_chunk_bwd(in, opt, on_device(c.d_o), on_device(c.dht));
      break;
    case Gdn2CheckOp::recurrent: out = gdn2_recurrent(in, opt); break;
    case Gdn2CheckOp::ref:
      out = gdn2_recurrent_ref(c.in, opt);
      if (backward) grads = gdn2_recurrent_ref_bwd(c.in, opt, c.d_o, c.dht);
      break;
  }
  const std::pair<const char*, const Tensor*> produced[] = {
      {"o", &out.o},     {"ht", &out.ht},   {"dq", &grads.dq}, {"dk", &grads.dk},   {"dv", &grads.dv},
      {"dg", &grads.dg}, {"db", &grads.db}, {"dw", &grads.dw}, {"dh0", &grads.dh0}};
  for (const auto& [key, expected] : c.expected) {
    const auto it = std::find_if(std::begin(produced), std::end(produced),
                                 [&](const auto& pr) { return key == pr.first; });
    if (it == std::end(produced) || !it->second->defined()) continue;
    GDN2_CHECK(it->second->numel() == expected.numel(), FormatError, "case '", c.name, "': expected ", key, " ",
               expected.describe(), " but the op produced ", it->second->describe());
    const double e = rel_rms_error(*it->second, expected);
    r.errors.emplace_back(key, e);
    if (!(e <= budget)) r.pass = false;
  }
  if (r.errors.empty()) r.pass = false;  // nothing compared is not a pass
  return r;
}

}  // namespace gdn2
