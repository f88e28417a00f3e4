// The state-dict reader lives in the framework, shared with the tfjs provider; re-exported for compatibility.
export {
  type FloatTensor,
  isTrainingOnlyKey,
  StateDictReader,
  type StateDictReaderOptions,
} from '@facerec/framework/internal';
