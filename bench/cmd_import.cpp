// `ffr-bench import KIND --root DIR --out MANIFEST.csv`: a manifest and its sidecar from a data
// set's official layout (data/import/<kind>.h says which files each reads), paths relative to
// the manifest, no image copied. This file only parses flags; the importers do the work.
#include "bench/command.h"
#include "data/groups.h"
#include "data/import/celeba.h"
#include "data/import/merge.h"
#include "data/import/spuco_animals.h"
#include "data/import/synthetic.h"
#include "data/import/utkface.h"
#include "data/import/waterbirds.h"
#include "engine/error.h"

#include <array>
#include <cstdio>
#include <functional>
#include <memory>

namespace ffr::bench {
namespace {

namespace fs = std::filesystem;

// Counts per split and (y, b) group, so the user sees at once what the archive held.
void print_summary(const data::Manifest& m) {
  const data::GroupIndex groups(m.info);
  std::printf("wrote %s and %s: %zu images, %d classes x %d bias values, %d groups, image size %d\n",
              m.csv_path.string().c_str(), data::sidecar_path(m.csv_path).string().c_str(), m.samples.size(),
              m.info.num_classes(), m.info.num_biases(), groups.num_groups(), m.info.image_size);
  std::vector<std::array<int64_t, 3>> counts(size_t(groups.num_groups()), {0, 0, 0});
  for (const data::Sample& s : m.samples) ++counts[size_t(groups.group(s.y, s.b))][size_t(s.split)];
  std::printf("  %-30s %-24s %8s %8s %8s\n", "y (class)", "b (bias)", "train", "val", "test");
  for (int g = 0; g < groups.num_groups(); ++g) {
    const auto [y, b] = groups.pair(g);
    std::printf("  %-30s %-24s %8lld %8lld %8lld\n", detail::concat(y, " ", m.info.class_names[size_t(y)]).c_str(),
                detail::concat(b, " ", m.info.bias_names[size_t(b)]).c_str(),
                static_cast<long long>(counts[size_t(g)][0]), static_cast<long long>(counts[size_t(g)][1]),
                static_cast<long long>(counts[size_t(g)][2]));
  }
}

void finish(const data::ImportResult& r) {
  for (const std::string& w : r.warnings) std::fprintf(stderr, "ffr-bench: warning: %s\n", w.c_str());
  data::write_imported_manifest(r.manifest);
  print_summary(r.manifest);
}

// The flags every kind takes; `split_flags` for kinds whose archive may lack a split.
void add_common(CLI::App& kind, data::ImportCommon& c, bool split_flags) {
  kind.add_option("--out", c.out, "manifest CSV to write (its .json sidecar goes beside it)")->required();
  kind.add_option("--image-size", c.image_size, "sidecar image_size (0: the first image's width)")
      ->capture_default_str();
  if (!split_flags) return;
  kind.add_option("--val-fraction", c.fractions.val, "share of each group in val (archives without a split)")
      ->capture_default_str();
  kind.add_option("--test-fraction", c.fractions.test, "share of each group in test (archives without a split)")
      ->capture_default_str();
  kind.add_option("--seed", c.seed, "seed of that split")->capture_default_str();
}

CLI::App* add_kind(CLI::App& sub, const char* name, const char* description, std::function<void()> run) {
  CLI::App* kind = sub.add_subcommand(name, description);
  kind->callback(std::move(run));
  return kind;
}

void setup(CLI::App& sub) {
  sub.require_subcommand(1, 1);
  auto common = std::make_shared<data::ImportCommon>();

  auto celeba = std::make_shared<data::CelebaImport>();
  CLI::App* k = add_kind(sub, "celeba", "CelebA / CelebA-HQ: list_attr_celeba.txt + list_eval_partition.txt",
                         [=] { finish(data::import_celeba(*celeba, *common)); });
  k->add_option("--root", celeba->root, "folder with list_attr_celeba.txt and list_eval_partition.txt")
      ->required()
      ->check(CLI::ExistingDirectory);
  k->add_option("--images", celeba->images,
                "image folder [ROOT/img_align_celeba, or ROOT/CelebA-HQ-img with --hq-mapping]");
  k->add_option("--hq-mapping", celeba->hq_mapping, "CelebA-HQ-to-CelebA-mapping.txt: import CelebA-HQ (<idx>.jpg)")
      ->check(CLI::ExistingFile);
  k->add_option("--target", celeba->target, "target attribute y (the paper: Smiling)")->capture_default_str();
  k->add_option("--bias", celeba->bias, "bias attribute b (the paper: Male, its 'Gender')")->capture_default_str();
  add_common(*k, *common, false);

  auto utk = std::make_shared<data::UtkfaceImport>();
  k = add_kind(sub, "utkface", "UTKFace: labels from age_gender_race_date.jpg names; seeded split",
               [=] { finish(data::import_utkface(*utk, *common)); });
  k->add_option("--root", utk->root, "folder of the images (searched recursively)")
      ->required()
      ->check(CLI::ExistingDirectory);
  k->add_option("--target", utk->target, "gender, race or age (the paper: gender)")
      ->check(CLI::IsMember({"gender", "race", "age"}))
      ->capture_default_str();
  k->add_option("--bias", utk->bias, "gender, race or age (the paper: age)")
      ->check(CLI::IsMember({"gender", "race", "age"}))
      ->capture_default_str();
  k->add_option("--age-split", utk->age_split, "age: young below this age, old from it")->capture_default_str();
  add_common(*k, *common, true);

  auto spuco = std::make_shared<data::SpucoAnimalsImport>();
  k = add_kind(sub, "spuco-animals", "SpuCo Animals: <split>/<class>/<background>/ folders",
               [=] { finish(data::import_spuco_animals(*spuco, *common)); });
  k->add_option("--root", spuco->root, "folder holding spuco_birds/ and spuco_dogs/")
      ->required()
      ->check(CLI::ExistingDirectory);
  add_common(*k, *common, true);

  auto waterbirds = std::make_shared<data::WaterbirdsImport>();
  k = add_kind(sub, "waterbirds", "Waterbirds: metadata.csv (img_filename, y, place, split)",
               [=] { finish(data::import_waterbirds(*waterbirds, *common)); });
  k->add_option("--root", waterbirds->root, "folder holding metadata.csv")->required()->check(CLI::ExistingDirectory);
  add_common(*k, *common, false);

  auto synthetic = std::make_shared<data::SyntheticImport>();
  auto synthetic_common = std::make_shared<data::ImportCommon>();
  synthetic_common->fractions = {0.0, 0.1};  // the paper trains on generated images; a tenth held out (Table 3)
  k = add_kind(sub, "synthetic",
               "generated images: <class>/<bias>/ folders or a CSV (path,class,bias,prompt,generator)",
               [=] { finish(data::import_synthetic(*synthetic, *synthetic_common)); });
  k->add_option("--root", synthetic->root, "folder with one <class>/<bias>/ subfolder per group")
      ->check(CLI::ExistingDirectory);
  k->add_option("--csv", synthetic->csv, "CSV of path,class,bias[,prompt,generator,split,prompt_kind]")
      ->check(CLI::ExistingFile);
  k->add_option("--prompt-kind", synthetic->prompt_kind,
                "aware (\"a photo of {bias} {class}\") or agnostic (class-only prompts: the Table 5 pool); a CSV's "
                "prompt_kind column wins")
      ->check(CLI::IsMember({"aware", "agnostic"}))->capture_default_str();
  k->add_option("--like", synthetic->like, "real manifest whose class and bias names (and order) to use")
      ->check(CLI::ExistingFile);
  k->add_option("--generator", synthetic->generator,
                "generator column for the folder form (e.g. stable-diffusion-v1-4)");
  add_common(*k, *synthetic_common, true);

  auto merge = std::make_shared<data::MergeImport>();
  k = add_kind(sub, "merge", "a real and a synthetic manifest joined into one (same class and bias names)",
               [=] { finish(data::merge_manifests(*merge, *common)); });
  k->add_option("--real", merge->real, "real manifest CSV")->required()->check(CLI::ExistingFile);
  k->add_option("--synthetic", merge->synthetic, "synthetic manifest CSV")->required()->check(CLI::ExistingFile);
  add_common(*k, *common, false);
}

const bool registered = register_command(
    {"import",
     "write a manifest from a data set's own layout: celeba, utkface, spuco-animals, waterbirds, synthetic, merge",
     setup});

}  // namespace
}  // namespace ffr::bench
