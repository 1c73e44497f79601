/// Builds a run's data from its settings.
public enum TaskLoader {
  /// Loads the dataset `settings` names. A stored `vocabulary` (from a checkpoint) is
  /// reused so token ids keep their meaning; otherwise one is built from the training split.
  public static func load(_ settings: DataSettings, vocabulary: Vocabulary? = nil) throws -> (TaskData, Vocabulary?) {
    let (data, vocabulary) = try loadAll(settings, vocabulary: vocabulary)
    return (try data.holdingOut(settings.holdout), vocabulary)
  }

  private static func loadAll(_ settings: DataSettings, vocabulary: Vocabulary?) throws -> (TaskData, Vocabulary?) {
    let path = settings.resolvedPath
    switch settings.task {
    case .sst2:
      var tokenizer: Tokenizer? = nil
      var wordPiece: WordPieceTokenizer? = nil
      if case .words(let t)? = vocabulary { tokenizer = t }
      if case .wordPiece(let w)? = vocabulary { wordPiece = w }
      let options = TextClassificationOptions(
        maxLength: settings.maxLen, vocabularySize: settings.vocabSize, minFrequency: settings.minFreq,
        numClasses: settings.classes, trainLimit: settings.trainLimit, evalLimit: settings.evalLimit)
      let d = try TextClassificationData.load(
        trainFile: path + "/train.tsv", evalFile: path + "/dev.tsv", options: options, tokenizer: tokenizer,
        wordPiece: wordPiece)
      return (TaskData(.text(d), bucketByLength: settings.bucketByLength), d.vocabulary)
    case .cifar10, .cifar100, .cifar100Coarse:
      let format: CIFARFormat =
        switch settings.task {
        case .cifar10: .cifar10
        case .cifar100: .cifar100Fine
        default: .cifar100Coarse
        }
      // The config's data.mean/std (an imported ViT's), else the stored model's, else
      // computed from the training split (and then stored with the model).
      var stored: ChannelStats? = nil
      if case .imageNormalization(let s)? = vocabulary { stored = s }
      let options = ImageOptions(
        trainLimit: settings.trainLimit, evalLimit: settings.evalLimit, normalization: settings.normalization ?? stored,
        augment: settings.augment, resize: settings.resize)
      let images = try ImageData.loadCIFAR(directory: path, format: format, options: options)
      return (TaskData(.images(images)), .imageNormalization(images.normalization))
    case .text:
      var stored: CorpusVocabulary? = nil
      if case .corpus(let v)? = vocabulary { stored = v }
      let options = CorpusOptions(
        maxLength: settings.maxLen, trainFraction: settings.trainFraction, vocabulary: settings.level)
      var corpus = try LanguageModelCorpus.load(file: path, options: options, vocabulary: stored)
      if let limit = settings.trainLimit { corpus = corpus.limitingTraining(windows: limit) }
      return (TaskData(.corpus(corpus), evalWindowLimit: settings.evalLimit), .corpus(corpus.vocabulary))
    }
  }
}
