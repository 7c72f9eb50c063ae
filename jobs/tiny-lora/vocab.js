'use strict';
/**
 * The fixed output vocabulary of the tiny-lora development model: every answer it can give is one of these words.
 *
 * The ORDER IS PART OF THE MODEL: row i of lm_head (and of every adapter's lora_B) belongs to VOCAB[i]. Appending
 * words, removing or reordering them makes a new base model (change BASE_SEED in model.js too) and invalidates every
 * adapter trained before. Words are lowercase and unique; answers are matched after normalisation (see answerIndex).
 */

const DIGITS = Array.from({ length: 101 }, (_, i) => String(i)); // 0..100

const WORDS = [
  // booleans and polarity
  'yes', 'no', 'true', 'false', 'maybe',
  'positive', 'negative', 'neutral', 'mixed',
  // multiple choice
  'a', 'b', 'c', 'd', 'e',
  // support intents
  'billing', 'shipping', 'refund', 'account', 'technical', 'cancellation', 'complaint', 'feedback', 'order', 'payment',
  'delivery', 'return', 'exchange', 'warranty', 'subscription', 'login', 'password', 'security', 'privacy', 'pricing',
  'sales', 'support', 'bug', 'feature', 'question', 'other', 'spam', 'urgent', 'low', 'medium', 'high', 'critical',
  // news and content topics
  'sports', 'politics', 'business', 'science', 'health', 'entertainment', 'weather', 'travel', 'food', 'technology',
  'education', 'finance', 'economy', 'music', 'movies', 'books', 'art', 'fashion', 'gaming', 'automotive', 'crime',
  'law', 'environment', 'energy', 'housing', 'religion', 'history', 'world', 'local', 'opinion', 'lifestyle',
  // emotions
  'joy', 'sadness', 'anger', 'fear', 'surprise', 'disgust', 'love',
  // languages
  'english', 'french', 'german', 'spanish', 'italian', 'portuguese', 'dutch', 'chinese', 'japanese', 'korean',
  'arabic', 'russian', 'hindi',
  // colours
  'red', 'green', 'blue', 'yellow', 'black', 'white', 'orange', 'purple', 'brown', 'gray',
  // animals
  'cat', 'dog', 'bird', 'fish', 'horse', 'cow', 'sheep', 'lion', 'tiger', 'bear',
  // days and months
  'monday', 'tuesday', 'wednesday', 'thursday', 'friday', 'saturday', 'sunday',
  'january', 'february', 'march', 'april', 'may', 'june', 'july', 'august', 'september', 'october', 'november',
  'december',
  // misc labels
  'person', 'organization', 'location', 'date', 'time', 'money', 'product', 'event',
  'noun', 'verb', 'adjective', 'adverb',
  'safe', 'unsafe', 'toxic', 'relevant', 'irrelevant', 'correct', 'incorrect', 'valid', 'invalid',
  'agree', 'disagree', 'entailment', 'contradiction',
  'greeting', 'goodbye', 'thanks', 'help', 'info', 'request',
  'none', 'all', 'some',
  // the answer for "the model does not know"
  'unknown',
];

const VOCAB = Object.freeze([...WORDS, ...DIGITS]);

module.exports = { VOCAB };
