// bin/tokenizer-vectors: the oracle for imported tokenizers. Runs llama.cpp's own tokenizer test vectors
// (its repository's models/ggml-vocab-NAME.gguf with NAME.gguf.inp / .gguf.out, the format of its
// tests/test-tokenizer-0.cpp: inputs separated by "\n__ggml_vocab_test__\n", one line of space-separated
// ids per input, tokenized with add_special = false, parse_special = false) through data/model_vocab.h
// and prints, per vocabulary: cases, identical, and the first difference. The vocab files are not part
// of this repository: --vocab-dir DIR, or $LLAMA_CPP_SRC/models. Exit 1 when any supported vocabulary
// differs. With --model FILE.gguf it instead prints the ids of --prompt / --file as llama.cpp's
// `llama-tokenize --ids` does (same defaults), so the two can be diffed. Read next: data/model_vocab.h.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <sstream>

#include "data/model_vocab.h"
#include "src/io/file.h"
#include "src/io/gguf.h"
#include "src/util/cli.h"
#include "src/util/error.h"

using namespace qat;
namespace fs = std::filesystem;

namespace {

// input -> expected ids; a repeated input keeps its last line, as test-tokenizer-0's std::map does.
std::map<std::string, std::vector<int32_t>> read_cases(const std::string& inp_path, const std::string& out_path) {
  const std::string raw = read_file(inp_path, uint64_t(1) << 26);
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> inputs;
  for (size_t pos = 0; pos < raw.size();) {
    size_t next = raw.find(sep, pos);
    if (next == std::string::npos) {
      inputs.push_back(raw.substr(pos));
      break;
    }
    inputs.push_back(raw.substr(pos, next - pos));
    pos = next + sep.size();
  }
  std::istringstream outs(read_file(out_path, uint64_t(1) << 26));
  std::vector<std::string> lines;
  for (std::string line; std::getline(outs, line);) lines.push_back(line);
  QAT_CHECK(inputs.size() == lines.size(), inp_path, ": ", inputs.size(), " inputs but ", out_path, " has ", lines.size(), " lines");
  std::map<std::string, std::vector<int32_t>> cases;
  for (size_t i = 0; i < inputs.size(); i++) {
    std::istringstream ids(lines[i]);
    std::vector<int32_t> v;
    for (std::string tok; ids >> tok;) {
      QAT_CHECK(tok.find_first_not_of("0123456789") == std::string::npos && tok.size() < 10, out_path, ": line ", i + 1,
                ": expected token ids, got '", one_line(tok), "'");
      v.push_back(int32_t(std::stol(tok)));
    }
    cases[inputs[i]] = std::move(v);
  }
  return cases;
}

// ids[from, from + 16) with "..." where cut.
std::string ids_text(const std::vector<int32_t>& ids, size_t from) {
  std::string s = from > 0 ? "... " : "";
  for (size_t i = from; i < ids.size() && i < from + 16; i++) s += (i > from ? " " : "") + std::to_string(ids[i]);
  if (ids.size() > from + 16) s += " ...";
  return s;
}

// "input": expected [...], got [...] from a few ids before the first one that differs.
std::string difference(const std::string& text, const std::vector<int32_t>& want, const std::vector<int32_t>& got) {
  size_t k = 0;
  while (k < want.size() && k < got.size() && want[k] == got[k]) k++;
  const size_t from = k > 4 ? k - 4 : 0;
  std::string shown = one_line(text.size() > 60 ? text.substr(0, 60) + "..." : text);
  return "first difference: '" + shown + "' at id " + std::to_string(k) + ": expected [" + ids_text(want, from) +
         "], got [" + ids_text(got, from) + "]";
}

// One vocabulary: returns true when it was checked (false: unsupported). With `hf_json`, the vocabulary
// is that Hugging Face tokenizer.json (made from the GGUF by tests/reference/hf_tokenizer_from_gguf.py),
// held to the GGUF's expected ids.
bool check_vocab(const std::string& name, const std::string& gguf, const std::string& hf_json, bool* differs) {
  auto cases = read_cases(gguf + ".inp", gguf + ".out");
  ModelVocab v;
  try {
    v = hf_json.empty() ? ModelVocab::from_gguf(read_gguf(gguf)) : ModelVocab::from_hf_tokenizer_json(hf_json);
  } catch (const Error& e) {
    std::printf("%-16s %5zu cases  unsupported: %s\n", name.c_str(), cases.size(), e.what());
    return false;
  }
  size_t same = 0;
  std::string first;
  for (const auto& [text, want] : cases) {
    std::vector<int32_t> got = v.encode(text, false, false);
    if (got == want) {
      same++;
    } else if (first.empty()) {
      first = difference(text, want, got);
    }
  }
  std::printf("%-16s %5zu cases %5zu identical  %s\n", name.c_str(), cases.size(), same, first.c_str());
  if (same != cases.size()) *differs = true;
  return true;
}

// --model: "[id, id, ...]" as llama-tokenize --ids prints (add_special when the model adds BOS and
// --no-bos is not given; special tokens parsed unless --no-parse-special).
int print_ids(const std::string& model, const std::string& prompt, const std::string& file, bool no_bos, bool no_parse) {
  if (prompt.empty() == file.empty()) throw UsageError("--model: give exactly one of --prompt and --file");
  const std::string text = file.empty() ? prompt : read_file(file, uint64_t(1) << 30);
  const ModelVocab v = ModelVocab::from_gguf(read_gguf(model));
  const std::vector<int32_t> ids = v.encode(text, v.add_bos() && !no_bos, !no_parse);
  std::string line = "[";
  for (size_t i = 0; i < ids.size(); i++) line += (i ? ", " : "") + std::to_string(ids[i]);
  std::printf("%s]\n", line.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return run_main("tokenizer-vectors", [&]() {
    std::string dir, only, model, prompt, file, hf_dir;
    bool no_bos = false, no_parse = false;
    ArgParser p("tokenizer-vectors",
                "Checks imported tokenizers against llama.cpp's test vectors (models/ggml-vocab-*.gguf with .inp/.out):\n"
                "prints per vocabulary the cases, how many are identical, and the first difference.");
    p.option("--vocab-dir", &dir, "directory of ggml-vocab-*.gguf(.inp/.out) (default: $LLAMA_CPP_SRC/models)", "DIR");
    p.option("--hf-dir", &hf_dir, "check the tokenizer.json of HF_DIR/NAME/ (hf_tokenizer_from_gguf.py) instead of each GGUF", "HF_DIR");
    p.option("--vocab", &only, "only this vocabulary (NAME of ggml-vocab-NAME.gguf)", "NAME");
    p.option("--model", &model, "instead: print the ids of --prompt / --file with this GGUF's tokenizer", "FILE.gguf");
    p.option("--prompt", &prompt, "--model: the text", "TEXT");
    p.option("--file", &file, "--model: a file holding the text", "PATH");
    p.flag("--no-bos", &no_bos, "--model: no BOS / EOS even if the model adds them");
    p.flag("--no-parse-special", &no_parse, "--model: special tokens written in the text stay text");
    if (!p.parse(argc, argv)) return 0;
    if (!model.empty()) return print_ids(model, prompt, file, no_bos, no_parse);
    if (dir.empty()) {
      const char* src = std::getenv("LLAMA_CPP_SRC");
      if (!src || !*src) throw UsageError("--vocab-dir: missing (or set LLAMA_CPP_SRC to a llama.cpp checkout)");
      dir = std::string(src) + "/models";
    }
    std::error_code ec;
    QAT_CHECK(fs::is_directory(dir, ec), "--vocab-dir: ", one_line(dir), " is not a directory");
    std::vector<std::string> names;
    const std::string prefix = "ggml-vocab-", suffix = ".gguf.inp";
    for (const auto& e : fs::directory_iterator(dir)) {
      const std::string f = e.path().filename().string();
      if (f.size() > prefix.size() + suffix.size() && f.compare(0, prefix.size(), prefix) == 0 &&
          f.compare(f.size() - suffix.size(), suffix.size(), suffix) == 0)
        names.push_back(f.substr(prefix.size(), f.size() - prefix.size() - suffix.size()));
    }
    std::sort(names.begin(), names.end());
    QAT_CHECK(!names.empty(), "--vocab-dir: ", one_line(dir), " holds no ggml-vocab-*.gguf.inp files");
    bool differs = false;
    size_t checked = 0;
    for (const std::string& name : names) {
      if (!only.empty() && name != only) continue;
      const std::string gguf = dir + "/" + prefix + name + ".gguf";
      if (!fs::exists(gguf, ec)) {
        std::printf("%-16s no %s: skipped\n", name.c_str(), (prefix + name + ".gguf").c_str());
        continue;
      }
      std::string hf_json;
      if (!hf_dir.empty()) {
        hf_json = hf_dir + "/" + name + "/tokenizer.json";
        if (!fs::exists(hf_json, ec)) {
          std::printf("%-16s no %s: skipped\n", name.c_str(), one_line(hf_json).c_str());
          continue;
        }
      }
      checked += check_vocab(name + (hf_json.empty() ? "" : " (hf)"), gguf, hf_json, &differs);
    }
    QAT_CHECK(only.empty() || checked > 0, "--vocab: no supported vocabulary ", one_line(only), " in ", one_line(dir));
    std::printf("tokenizer-vectors: %zu vocabularies checked, %s\n", checked, differs ? "some differ" : "all identical");
    return differs ? 1 : 0;
  });
}
