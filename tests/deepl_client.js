// DeepL's official Node client (deepl-node) against our server: every call it exposes that a
// Vietnamese→English server can honour, and the ones it cannot (their errors must be the client's
// own classes). Run by tests/test_clients_deepl_node.py:
//   node tests/deepl_client.js URL KEY LIMIT FOLDER   (FOLDER holds page.html and report.docx)
// Prints one JSON object: for each step, {ok: true, value} or {ok: false, error: class, message}.
'use strict';
const fs = require('fs');
const path = require('path');
const deepl = require('deepl-node');

const [url, key, limit, folder] = process.argv.slice(2);
const TERM = 'Zanzibarovia';
const options = { serverUrl: url, minTimeout: 60000, maxRetries: 3 };
const translator = new deepl.Translator(key, options);
const report = {};

async function step(name, call) {
  try {
    report[name] = { ok: true, value: await call() };
  } catch (error) {
    report[name] = { ok: false, error: error.constructor.name, message: String(error.message) };
  }
}

const info = (glossary) => ({
  glossaryId: glossary.glossaryId, name: glossary.name, ready: glossary.ready, sourceLang: glossary.sourceLang,
  targetLang: glossary.targetLang, entryCount: glossary.entryCount, created: glossary.creationTime.toISOString(),
});

async function main() {
  await step('translate_one', () => translator.translateText('Xin chào thế giới. Tôi là sinh viên.', null, 'en-US'));
  await step('translate_list', () => translator.translateText(
    ['Hôm nay trời đẹp.', 'Chúng tôi đi học.', 'Hôm nay trời đẹp.'], 'vi', 'en-GB'));
  await step('english', () => translator.translateText('This sentence is already English.', null, 'en-US'));
  await step('options', () => translator.translateText('Xin chào.\nTạm biệt.', 'vi', 'en-US', {
    splitSentences: 'nonewlines', preserveFormatting: true, formality: 'prefer_less', context: 'Một cuộc trò chuyện.',
    outlineDetection: false, nonSplittingTags: ['b'],
  }));
  await step('html', () => translator.translateText(
    '<p>Tôi sống ở <b>Hà Nội</b> với <a href="https://example.org/">gia đình</a>.</p>', 'vi', 'en-US',
    { tagHandling: 'html' }));
  await step('xml', () => translator.translateText(
    '<doc><title>Tin tức</title><s>Tôi sống ở Hà Nội.</s></doc>', null, 'en-GB', { tagHandling: 'xml' }));
  await step('ignore_tags', () => translator.translateText(
    '<doc>Tôi sống ở <x id="1">Hà Nội đẹp</x> với gia đình.</doc>', null, 'en-US',
    { tagHandling: 'xml', ignoreTags: ['x'] }));
  await step('source_languages', () => translator.getSourceLanguages());
  await step('target_languages', () => translator.getTargetLanguages());
  await step('glossary_pairs', () => translator.getGlossaryLanguagePairs());
  await step('unsupported_target', () => translator.translateText('Xin chào.', null, 'de'));
  await step('unsupported_source', () => translator.translateText('Bonjour.', 'fr', 'en-US'));
  await step('wrong_key', () => new deepl.Translator('not-a-key', options).getUsage());
  await step('glossary_unsupported_pair', () => translator.createGlossary(
    'de', 'vi', 'de', new deepl.GlossaryEntries({ entries: { 'xin chào': 'hallo' } })));

  const entries = new deepl.GlossaryEntries({ entries: { 'Hà Nội': TERM, 'sinh viên': 'undergraduate' } });
  await step('glossary_create', async () => info(await translator.createGlossary('Tin tức', 'vi', 'en', entries)));
  const id = report.glossary_create.ok ? report.glossary_create.value.glossaryId : 'missing';
  await step('glossary_list', async () => (await translator.listGlossaries()).map(info));
  await step('glossary_get', async () => info(await translator.getGlossary(id)));
  await step('glossary_entries', async () => (await translator.getGlossaryEntries(id)).entries());
  await step('glossary_translate', () => translator.translateText('Tôi sống ở Hà Nội.', 'vi', 'en-US', { glossary: id }));
  await step('glossary_delete', () => translator.deleteGlossary(id));
  await step('glossary_get_deleted', () => translator.getGlossary(id));
  await step('glossary_csv', async () => {
    const glossary = await translator.createGlossaryWithCsv('csv', 'vi', 'en', Buffer.from('Hà Nội,Hanoi,vi,en\n'));
    const found = (await translator.getGlossaryEntries(glossary)).entries();
    await translator.deleteGlossary(glossary);
    return found;
  });

  for (const name of ['page.html', 'report.docx']) {
    const source = path.join(folder, name);
    if (!fs.existsSync(source)) continue;
    const output = path.join(folder, 'en-' + name);
    await step('document_' + name, async () => {
      const status = await translator.translateDocument(source, output, null, 'en-US');
      return { done: status.done(), billedCharacters: status.billedCharacters, output };
    });
  }
  await step('document_steps', async () => {
    const handle = await translator.uploadDocument(Buffer.from('Xin chào các bạn.'), null, 'en-GB',
      { filename: 'note.txt' });
    const { status } = await translator.isDocumentTranslationComplete(handle);
    const output = path.join(folder, 'note.en.txt');
    await translator.downloadDocument(handle, output);
    return { done: status.done(), text: fs.readFileSync(output, 'utf-8') };
  });
  await step('document_pdf', () => translator.translateDocument(
    Buffer.from('%PDF-1.4'), path.join(folder, 'out.pdf'), null, 'en-US', { filename: 'a.pdf' }));

  await step('usage_before', async () => (await translator.getUsage()).character);
  await step('usage_count', async () => {
    await translator.translateText('Cảm ơn.', null, 'en-US');
    return (await translator.getUsage()).character;
  });
  await step('quota', () => translator.translateText('Xin chào. '.repeat(Number(limit) / 10 + 1), null, 'en-US'));
  process.stdout.write(JSON.stringify(report));
}

main().catch((error) => {
  process.stdout.write(JSON.stringify({ crashed: String(error && error.stack) }));
  process.exitCode = 1;
});
