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
      let options = ImageOptions(
        trainLimit: settings.trainLimit, evalLimit: settings.evalLimit, normalization: settings.normalization,
        augment: settings.augment, resize: settings.resize)
      return (TaskData(.images(try ImageData.loadCIFAR(directory: path, format: format, options: options))), nil)
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
