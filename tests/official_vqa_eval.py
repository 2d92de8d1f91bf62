"""A literal transcription of the official VQA evaluation loop (vqaEval.py, Python 3 version),
kept deliberately close to the original (dict answers with ids, in-place edits) as an independent
oracle for tasks/metrics/vqa_accuracy.py. Only used by tests."""

import re

contractions = {"dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "cant": "can't",
                "wont": "won't", "youre": "you're", "whats": "what's", "thats": "that's",
                "Im": "I'm", "Ive": "I've", "arent": "aren't", "didnt": "didn't"}
manualMap = {'none': '0', 'zero': '0', 'one': '1', 'two': '2', 'three': '3', 'four': '4',
             'five': '5', 'six': '6', 'seven': '7', 'eight': '8', 'nine': '9', 'ten': '10'}
articles = ['a', 'an', 'the']
periodStrip = re.compile(r"(?!<=\d)(\.)(?!\d)")
commaStrip = re.compile(r"(\d)(,)(\d)")
punct = [';', r"/", '[', ']', '"', '{', '}', '(', ')', '=', '+', '\\', '_', '-', '>', '<', '@',
         '`', ',', '?', '!']


def processPunctuation(inText):
    outText = inText
    for p in punct:
        if (p + ' ' in inText or ' ' + p in inText) or (re.search(commaStrip, inText) is not None):
            outText = outText.replace(p, '')
        else:
            outText = outText.replace(p, ' ')
    outText = periodStrip.sub("", outText, re.UNICODE)
    return outText


def processDigitArticle(inText):
    outText = []
    tempText = inText.lower().split()
    for word in tempText:
        word = manualMap.setdefault(word, word)
        if word not in articles:
            outText.append(word)
    for wordId, word in enumerate(outText):
        if word in contractions:
            outText[wordId] = contractions[word]
    return ' '.join(outText)


def official_accuracy(prediction, answers):
    gts = [{"answer": a, "answer_id": i + 1} for i, a in enumerate(answers)]
    for ansDic in gts:
        ansDic['answer'] = ansDic['answer'].replace('\n', ' ').replace('\t', ' ').strip()
    resAns = prediction.replace('\n', ' ').replace('\t', ' ').strip()
    gtAcc = []
    gtAnswers = [ans['answer'] for ans in gts]
    if len(set(gtAnswers)) > 1:
        for ansDic in gts:
            ansDic['answer'] = processPunctuation(ansDic['answer'])
            ansDic['answer'] = processDigitArticle(ansDic['answer'])
        resAns = processPunctuation(resAns)
        resAns = processDigitArticle(resAns)
    for gtAnsDatum in gts:
        otherGTAns = [item for item in gts if item != gtAnsDatum]
        matchingAns = [item for item in otherGTAns if item['answer'] == resAns]
        acc = min(1, float(len(matchingAns)) / 3)
        gtAcc.append(acc)
    return float(sum(gtAcc)) / len(gtAcc)
